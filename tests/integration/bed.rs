//! Proves the OpenBao test bed is the seed's Vault: a Pod's ServiceAccount logs in through
//! Kubernetes auth (answered by the TokenReview stand-in) and issues `foo.home` from
//! `pki_intermediate/issue/home`, while other ServiceAccounts, revoked tokens and foreign domains
//! are refused. Talks to OpenBao directly; the crate under test is not involved.

use serde_json::{Value, json};

use crate::util::bao::{
    ISSUE_PATH, ISSUE_POLICY, LOGIN_ROLE, NAMESPACE, SERVICE_ACCOUNT, bed, service_account_jwt,
    service_account_jwt_with, unix_now,
};

/// Logs in at `auth/kubernetes/login` with `jwt` for `role`; returns the status and body.
fn login(role: &str, jwt: &str) -> (u16, Value) {
    bed().request(
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({"role": role, "jwt": jwt})),
    )
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
