//! Proves the OpenBao test bed is the seed's Vault: a Pod's ServiceAccount logs in through
//! Kubernetes auth (answered by the TokenReview stand-in) and issues `foo.home` from
//! `pki_intermediate/issue/home`, while other ServiceAccounts, revoked tokens and foreign domains
//! are refused; and that the extras the agent's authentication tests need do what they say: a
//! private bed that stops and restarts, the TokenReview stand-in's record of uids, short-TTL
//! Kubernetes roles, AppRole and plain tokens. Talks to OpenBao directly; the crate under test is
//! not involved.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::bao::{
    Bed, ISSUE_PATH, ISSUE_POLICY, LOGIN_ROLE, NAMESPACE, SERVICE_ACCOUNT, bed, private_bed,
    service_account_jwt, service_account_jwt_with, unix_now,
};
use crate::util::tokenreview::UID_CLAIM;

/// Logs in at the shared bed's `auth/kubernetes/login` with `jwt` for `role`.
fn login(role: &str, jwt: &str) -> (u16, Value) {
    login_on(bed(), role, jwt)
}

/// Logs in at `bed`'s `auth/kubernetes/login` with `jwt` for `role`; returns the status and body.
fn login_on(bed: &Bed, role: &str, jwt: &str) -> (u16, Value) {
    bed.request(
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({"role": role, "jwt": jwt})),
    )
}

/// `app-sa`'s login for `role` on `bed`, which must succeed; returns the token.
fn app_sa_token(bed: &Bed, role: &str) -> String {
    let (status, response) = login_on(bed, role, &service_account_jwt(NAMESPACE, SERVICE_ACCOUNT));
    assert_eq!(
        status, 200,
        "login as {SERVICE_ACCOUNT} for {role}: {response}"
    );
    client_token(&response).to_owned()
}

fn socket_address(bed: &Bed) -> SocketAddr {
    bed.addr()
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|error| panic!("{} is not http://<ip>:<port>: {error}", bed.addr()))
}

fn client_token(login_response: &Value) -> &str {
    login_response["auth"]["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no auth.client_token in the login answer: {login_response}"))
}

/// The `errors` array of an OpenBao error answer, joined, for `contains` checks.
fn errors(response: &Value) -> String {
    response["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors array in OpenBao's answer: {response}"))
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn app_sa_logs_in_and_issues_foo_home() {
    let bed = bed();
    let reviews_before = bed.token_review().requests();

    let (status, login_response) =
        login(LOGIN_ROLE, &service_account_jwt(NAMESPACE, SERVICE_ACCOUNT));
    assert_eq!(status, 200, "login as {SERVICE_ACCOUNT}: {login_response}");
    let auth = &login_response["auth"];
    assert_eq!(auth["token_policies"], json!(["default", ISSUE_POLICY]));
    assert_eq!(auth["metadata"]["service_account_name"], SERVICE_ACCOUNT);
    assert_eq!(auth["metadata"]["service_account_namespace"], NAMESPACE);
    assert_eq!(auth["lease_duration"], 24 * 3600, "the role's ttl=24h");
    assert!(
        bed.token_review().requests() > reviews_before,
        "OpenBao logged in without asking the TokenReview stand-in"
    );

    let (status, issued) = bed.request(
        "POST",
        ISSUE_PATH,
        Some(client_token(&login_response)),
        Some(json!({"common_name": "foo.home", "alt_names": "localhost,bar.home", "ttl": "1h"})),
    );
    assert_eq!(status, 200, "issue foo.home: {issued}");
    let data = &issued["data"];
    let certificate = data["certificate"].as_str().unwrap_or_default();
    assert!(
        certificate.starts_with("-----BEGIN CERTIFICATE-----"),
        "certificate: {data}"
    );
    let private_key = data["private_key"].as_str().unwrap_or_default();
    assert!(
        private_key.starts_with("-----BEGIN ") && private_key.contains("PRIVATE KEY-----"),
        "private_key: {data}"
    );
    assert_eq!(
        data["issuing_ca"].as_str().map(str::trim),
        Some(bed.intermediate_ca_pem().trim()),
        "issuing_ca is not the intermediate of pki_intermediate/"
    );
    assert_ne!(bed.intermediate_ca_pem(), bed.root_ca_pem());
    let expiration = data["expiration"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric expiration: {data}"));
    let lifetime = expiration.saturating_sub(unix_now());
    assert!(
        (3500..=3600).contains(&lifetime),
        "ttl=1h, yet the cert expires in {lifetime}s"
    );
}

#[test]
fn other_service_account_and_foreign_domain_are_refused() {
    let bed = bed();

    let (status, refused) = login(LOGIN_ROLE, &service_account_jwt(NAMESPACE, "other-sa"));
    assert_eq!(status, 403, "login as other-sa: {refused}");
    assert!(
        errors(&refused).contains("service account name not authorized"),
        "{refused}"
    );
    let (status, refused) = login(
        LOGIN_ROLE,
        &service_account_jwt("another-namespace", SERVICE_ACCOUNT),
    );
    assert_eq!(status, 403, "login from another namespace: {refused}");

    // A token holding exactly the seed's policy, as a logged-in agent would.
    let created = bed.root_request(
        "POST",
        "auth/token/create",
        json!({"policies": [ISSUE_POLICY], "ttl": "10m"}),
    );
    let (status, refused) = bed.request(
        "POST",
        ISSUE_PATH,
        Some(client_token(&created)),
        Some(json!({"common_name": "evil.com", "ttl": "1h"})),
    );
    assert_eq!(status, 400, "issue evil.com: {refused}");
    assert!(
        errors(&refused).contains("common name evil.com not allowed by this role"),
        "{refused}"
    );
}

#[test]
fn token_review_refusal_fails_the_login() {
    let bed = bed();
    let reviews_before = bed.token_review().requests();

    let revoked = service_account_jwt_with(NAMESPACE, SERVICE_ACCOUNT, json!({"revoked": true}));
    let (status, refused) = login(LOGIN_ROLE, &revoked);
    assert_eq!(status, 403, "login with a revoked token: {refused}");
    assert!(
        bed.token_review().requests() > reviews_before,
        "the refusal must come from the TokenReview, not from OpenBao's own claim checks"
    );

    let (status, refused) = login(LOGIN_ROLE, "not-a-jwt");
    assert_eq!(status, 403, "login with garbage: {refused}");
}

#[test]
fn isolated_pki_mount_issues_from_its_own_intermediate() {
    let bed = bed();
    let isolated = bed.mount_isolated_pki("pki_bed_isolated");
    assert_ne!(isolated.intermediate_ca_pem, bed.intermediate_ca_pem());

    let (status, login_response) = login(
        &isolated.login_role,
        &service_account_jwt(NAMESPACE, SERVICE_ACCOUNT),
    );
    assert_eq!(status, 200, "login for the isolated role: {login_response}");
    let token = client_token(&login_response);

    let (status, issued) = bed.request(
        "POST",
        &format!("{}/issue/home", isolated.mount),
        Some(token),
        Some(json!({"common_name": "foo.home", "ttl": "1h"})),
    );
    assert_eq!(status, 200, "issue from the isolated mount: {issued}");
    assert_eq!(
        issued["data"]["issuing_ca"].as_str().map(str::trim),
        Some(isolated.intermediate_ca_pem.trim())
    );

    // The isolated role's token must not reach the shared mount.
    let (status, refused) = bed.request(
        "POST",
        ISSUE_PATH,
        Some(token),
        Some(json!({"common_name": "foo.home", "ttl": "1h"})),
    );
    assert_eq!(status, 403, "isolated token on {ISSUE_PATH}: {refused}");
}

/// Later tests drive the crate from tokio; the bed must serve them, blocking or not.
#[tokio::test]
async fn bed_serves_async_tests() {
    let bed = bed();
    assert!(
        bed.addr().starts_with("http://127.0.0.1:"),
        "{}",
        bed.addr()
    );

    let (status, looked_up) = bed
        .request_async(
            "GET",
            "auth/token/lookup-self",
            Some(bed.root_token()),
            None,
        )
        .await;
    assert_eq!(status, 200, "{looked_up}");
    assert_eq!(looked_up["data"]["policies"], json!(["root"]));

    // The blocking form runs on the bed's runtime, so it cannot deadlock this single-threaded one.
    let (status, health) = bed.request("GET", "sys/health", None, None);
    assert_eq!(status, 200, "{health}\nbao said:\n{}", bed.server_output());
    assert_eq!(health["sealed"], false);
}

/// An agent test's outage: the private bed goes away (connections refused), comes back on the
/// same address as a fresh server configured like before, and logins work again. Async, as the
/// agent's tests will be: starting, stopping and dropping a bed must work inside a runtime.
#[tokio::test]
async fn private_bed_stops_and_restarts_on_the_same_address() {
    let mut private = private_bed();
    assert!(private.is_running());
    let address = socket_address(&private);
    let token_before = app_sa_token(&private, LOGIN_ROLE);
    let intermediate_before = private.intermediate_ca_pem().to_owned();

    let stopping = Instant::now();
    private.stop();
    eprintln!("private bed stopped in {:?}", stopping.elapsed());
    assert!(!private.is_running());
    let refused = TcpStream::connect_timeout(&address, Duration::from_secs(1))
        .expect_err("the stopped bed's port still accepts connections");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");
    private.stop(); // Stopping twice is harmless.

    let restarting = Instant::now();
    private.restart();
    eprintln!("private bed restarted in {:?}", restarting.elapsed());
    assert!(private.is_running());
    assert_eq!(socket_address(&private), address, "restarted elsewhere");
    assert_eq!(
        private.token_ttl(private.root_token()),
        Some(0),
        "root never expires"
    );
    // A fresh server: the old token is unknown to it, and its CAs are new.
    assert_eq!(private.token_ttl(&token_before), None);
    assert_ne!(private.intermediate_ca_pem(), intermediate_before);

    let token_after = app_sa_token(&private, LOGIN_ROLE);
    let (status, issued) = private
        .request_async(
            "POST",
            ISSUE_PATH,
            Some(&token_after),
            Some(json!({"common_name": "foo.home", "ttl": "1h"})),
        )
        .await;
    assert_eq!(status, 200, "issue after the restart: {issued}");
    assert_eq!(
        issued["data"]["issuing_ca"].as_str().map(str::trim),
        Some(private.intermediate_ca_pem().trim())
    );
    assert!(
        private.server_output().contains("stopped this server"),
        "the first server's output was lost"
    );

    drop(private);
    let refused = TcpStream::connect_timeout(&address, Duration::from_secs(1))
        .expect_err("a dropped bed's bao still accepts connections");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");
}

/// A swapped token file shows up as the next login's uid, in the stand-in's record and in the
/// token's metadata.
#[test]
fn token_review_records_a_swapped_uid() {
    let bed = bed();
    for uid in ["uid-bed-swap-1", "uid-bed-swap-2"] {
        let jwt = service_account_jwt_with(NAMESPACE, SERVICE_ACCOUNT, json!({UID_CLAIM: uid}));
        let (status, response) = login(LOGIN_ROLE, &jwt);
        assert_eq!(status, 200, "login with {uid}: {response}");
        assert_eq!(response["auth"]["metadata"]["service_account_uid"], uid);
    }
    // Other tests log in through the same stand-in meanwhile: look at this test's uids only.
    let seen: Vec<String> = bed
        .token_review()
        .seen_uids()
        .into_iter()
        .filter(|uid| uid.starts_with("uid-bed-swap-"))
        .collect();
    assert_eq!(seen, ["uid-bed-swap-1", "uid-bed-swap-2"]);
}

/// A 2s/6s role's token renews to 2s until its max TTL nears; then OpenBao caps the renewal (with
/// a warning) rather than refusing it, and at the max TTL the token is gone. The numbers observed
/// are in [`Bed::create_kubernetes_role`]'s documentation.
#[test]
fn short_ttl_kubernetes_token_renews_until_capped() {
    let bed = bed();
    bed.create_kubernetes_role("bed-short-ttl", "2s", "6s");
    let (status, response) = login(
        "bed-short-ttl",
        &service_account_jwt(NAMESPACE, SERVICE_ACCOUNT),
    );
    let logged_in = Instant::now();
    assert_eq!(status, 200, "login for the short role: {response}");
    assert_eq!(response["auth"]["lease_duration"], 2, "{response}");
    assert_eq!(response["auth"]["renewable"], true, "{response}");
    let token = client_token(&response).to_owned();

    // Renewing every half second keeps a 2s token alive even on a slow machine.
    let mut renewals = Vec::new();
    let last = loop {
        std::thread::sleep(Duration::from_millis(500));
        let (status, renewed) = bed.request(
            "POST",
            "auth/token/renew-self",
            Some(&token),
            Some(json!({})),
        );
        let at = logged_in.elapsed();
        eprintln!(
            "renew-self at {at:?}: HTTP {status}, lease_duration {}, warnings {}, errors {}",
            renewed["auth"]["lease_duration"], renewed["warnings"], renewed["errors"]
        );
        if status != 200 || at > Duration::from_secs(8) {
            break (at, status, renewed);
        }
        renewals.push((at, renewed));
    };

    let lease = |renewed: &Value| {
        renewed["auth"]["lease_duration"]
            .as_u64()
            .unwrap_or_else(|| panic!("no lease_duration in the renewal: {renewed}"))
    };
    let (first_at, first) = renewals.first().expect("no renewal succeeded");
    assert!(
        *first_at < Duration::from_secs(3),
        "the machine is too slow"
    );
    assert_eq!(lease(first), 2, "{first}");
    assert_eq!(first["warnings"], Value::Null, "{first}");
    let capped: Vec<_> = renewals
        .iter()
        .filter(|(_, renewed)| lease(renewed) < 2)
        .collect();
    let (capped_at, first_capped) = capped.first().expect("no renewal was capped");
    // The max TTL counts in whole seconds from the token's creation, so up to 1s less than 6s.
    assert!(
        *capped_at > Duration::from_secs(3),
        "capped {capped_at:?} into a 6s max TTL: {first_capped}"
    );
    assert!(
        first_capped["warnings"]
            .to_string()
            .contains("TTL value is capped accordingly"),
        "{first_capped}"
    );
    for (at, renewed) in &renewals {
        assert!(lease(renewed) <= 2, "at {at:?}: {renewed}");
        assert!(
            *at < Duration::from_secs(7),
            "renewed past the max TTL: {renewed}"
        );
    }
    // The renewal right at the max TTL fails with 500 while the token still exists, or 403 once
    // OpenBao has expired it; either way it is gone soon after.
    let (last_at, status, refused) = last;
    assert!(
        (status == 500 && errors(&refused).contains("past the max TTL, cannot renew"))
            || (status == 403 && errors(&refused) == "permission denied"),
        "at {last_at:?}: HTTP {status}: {refused}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(ttl) = bed.token_ttl(&token) {
        eprintln!("lookup-self at {:?}: ttl {ttl}", logged_in.elapsed());
        assert!(Instant::now() < deadline, "the token outlived its max TTL");
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("token gone at {:?}", logged_in.elapsed());
}

#[test]
fn approle_login_gets_the_pki_policy() {
    let bed = bed();
    let (role_id, secret_id) = bed.enable_approle();
    let (again_role_id, again_secret_id) = bed.enable_approle();
    assert_eq!(again_role_id, role_id, "the role was replaced");
    assert_ne!(
        again_secret_id, secret_id,
        "each call gets a fresh secret_id"
    );

    for secret_id in [secret_id, again_secret_id] {
        let (status, response) = bed.request(
            "POST",
            "auth/approle/login",
            None,
            Some(json!({"role_id": role_id, "secret_id": secret_id})),
        );
        assert_eq!(status, 200, "AppRole login: {response}");
        assert_eq!(
            response["auth"]["token_policies"],
            json!(["default", ISSUE_POLICY])
        );
    }
    let (status, refused) = bed.request(
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": "not-the-secret"})),
    );
    assert_eq!(
        status, 400,
        "AppRole login with a wrong secret_id: {refused}"
    );
}

#[test]
fn created_token_lives_until_revoked() {
    let bed = bed();
    let token = bed.create_token(&[ISSUE_POLICY], "1h", true);
    let ttl = bed.token_ttl(&token).expect("a fresh token is invalid");
    assert!((3590..=3600).contains(&ttl), "ttl=1h, yet {ttl}s remain");
    let (status, looked_up) = bed.request("GET", "auth/token/lookup-self", Some(&token), None);
    assert_eq!(status, 200, "{looked_up}");
    assert_eq!(
        looked_up["data"]["policies"],
        json!(["default", ISSUE_POLICY])
    );
    assert_eq!(looked_up["data"]["renewable"], true);

    bed.revoke_token(&token);
    assert_eq!(bed.token_ttl(&token), None, "the revoked token still works");
    assert_eq!(bed.token_ttl("no-such-token"), None);

    let fixed = bed.create_token(&[ISSUE_POLICY], "10m", false);
    let (status, refused) = bed.request(
        "POST",
        "auth/token/renew-self",
        Some(&fixed),
        Some(json!({})),
    );
    assert_eq!(status, 400, "renew a non-renewable token: {refused}");
    assert_eq!(errors(&refused), "lease is not renewable");
    bed.revoke_token(&fixed);
}

/// Between a stop and a restart another process may take the bed's port; the restart then says so
/// instead of starting elsewhere (an agent under test would not find it), and works once the port
/// is free again.
#[test]
fn restart_reports_a_port_taken_meanwhile() {
    let mut private = private_bed();
    let address = socket_address(&private);
    private.stop();
    let squatter = std::net::TcpListener::bind(address).expect("take the stopped bed's port");
    let failing = Instant::now();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| private.restart()))
        .expect_err("restarted although the port was taken");
    eprintln!("restart gave up after {:?}", failing.elapsed());
    let message = panic
        .downcast_ref::<String>()
        .expect("the panic message is a String");
    assert!(
        message.contains("another process took its port"),
        "{message}"
    );
    assert!(!private.is_running());

    drop(squatter);
    private.restart();
    app_sa_token(&private, LOGIN_ROLE);
}
