//! The standard `process_*` metrics, read from `/proc/self` at each scrape.
//!
//! The `prometheus` crate's own process collector keeps CPU time in an integer counter of whole
//! seconds, so a sidecar that uses less than a second of CPU between scrapes shows
//! `process_cpu_seconds_total` stuck at 0 and `rate()` of it is useless. This one reports the
//! kernel's clock ticks as fractional seconds, and reads nothing but `/proc`.

use std::fs;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, IntGauge, Opts};

/// The families Prometheus's client libraries export for a process, by the same names.
pub(crate) struct ProcessCollector {
    cpu: Counter,
    resident: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    threads: IntGauge,
    start_time: Gauge,
    /// Set at the first scrape, not at start: the boot time is in `/proc/stat`, whose size
    /// grows with the node's CPUs, and a process's start is no place to read it.
    start_time_read: std::sync::Once,
    descs: Vec<Desc>,
    ticks_per_second: f64,
    page_size: i64,
}

impl ProcessCollector {
    /// The collector for this process.
    pub(crate) fn new() -> prometheus::Result<ProcessCollector> {
        let cpu = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ))?;
        let resident = IntGauge::with_opts(Opts::new(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        ))?;
        let virtual_memory = IntGauge::with_opts(Opts::new(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
        ))?;
        let open_fds = IntGauge::with_opts(Opts::new(
            "process_open_fds",
            "Number of open file descriptors.",
        ))?;
        let max_fds = IntGauge::with_opts(Opts::new(
            "process_max_fds",
            "Maximum number of open file descriptors.",
        ))?;
        let threads = IntGauge::with_opts(Opts::new(
            "process_threads",
            "Number of OS threads in the process.",
        ))?;
        let start_time = Gauge::with_opts(Opts::new(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
        ))?;
        let mut descs = Vec::new();
        for collector in [
            &cpu as &dyn Collector,
            &resident,
            &virtual_memory,
            &open_fds,
            &max_fds,
            &threads,
            &start_time,
        ] {
            descs.extend(collector.desc().into_iter().cloned());
        }
        let sysconf = |var| {
            nix::unistd::sysconf(var)
                .ok()
                .flatten()
                .filter(|value| *value > 0)
        };
        let ticks_per_second = sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap_or(100) as f64;
        let page_size = sysconf(nix::unistd::SysconfVar::PAGE_SIZE).unwrap_or(4096);
        Ok(ProcessCollector {
            cpu,
            resident,
            virtual_memory,
            open_fds,
            max_fds,
            threads,
            start_time,
            start_time_read: std::sync::Once::new(),
            descs,
            ticks_per_second,
            page_size,
        })
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Some(stat) = read_stat() {
            // The start time never changes: read once.
            self.start_time_read.call_once(|| {
                if let Some(boot) = boot_time() {
                    self.start_time
                        .set(boot + stat.start_ticks as f64 / self.ticks_per_second);
                }
            });
            let total = stat.cpu_seconds(self.ticks_per_second);
            // A counter only goes up; scrapes may run concurrently, so add what is missing.
            let missing = total - self.cpu.get();
            if missing > 0.0 {
                self.cpu.inc_by(missing);
            }
            self.resident
                .set(stat.rss_pages.saturating_mul(self.page_size));
            self.virtual_memory
                .set(i64::try_from(stat.vsize).unwrap_or(i64::MAX));
            self.threads.set(stat.threads);
        }
        if let Ok(entries) = fs::read_dir("/proc/self/fd") {
            // The directory being read holds one descriptor of its own: not the process's.
            let count = entries.count().saturating_sub(1);
            self.open_fds.set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        if let Ok((soft, _)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            self.max_fds.set(i64::try_from(soft).unwrap_or(i64::MAX));
        }
        let mut families = Vec::with_capacity(self.descs.len());
        for collector in [
            &self.cpu as &dyn Collector,
            &self.resident,
            &self.virtual_memory,
            &self.open_fds,
            &self.max_fds,
            &self.threads,
            &self.start_time,
        ] {
            families.extend(collector.collect());
        }
        families
    }
}

/// The fields of `/proc/self/stat` this collector reports.
#[derive(Debug, PartialEq)]
struct Stat {
    utime: u64,
    stime: u64,
    threads: i64,
    start_ticks: u64,
    vsize: u64,
    rss_pages: i64,
}

impl Stat {
    /// User plus system time in seconds, with the ticks' fraction kept.
    fn cpu_seconds(&self, ticks_per_second: f64) -> f64 {
        (self.utime + self.stime) as f64 / ticks_per_second
    }
}

fn read_stat() -> Option<Stat> {
    parse_stat(&fs::read_to_string("/proc/self/stat").ok()?)
}

/// Parses `/proc/PID/stat` (proc(5)). The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    // `fields[0]` is field 3 (state).
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |number: usize| fields.get(number - 3).copied();
    Some(Stat {
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
        threads: field(20)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
        vsize: field(23)?.parse().ok()?,
        rss_pages: field(24)?.parse().ok()?,
    })
}

/// The boot time in Unix seconds (`btime` in `/proc/stat`).
fn boot_time() -> Option<f64> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with spaces and a `)`, as a process may name itself.
        let line = "4242 (a b) c) S 1 4242 4242 0 -1 4194560 900 0 0 0 123 45 0 0 20 0 7 0 \
                    5000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                utime: 123,
                stime: 45,
                threads: 7,
                start_ticks: 5000,
                vsize: 104_857_600,
                rss_pages: 2560,
            })
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn cpu_time_keeps_the_fraction_of_a_second() {
        let stat = parse_stat(
            "1 (x) S 1 1 1 0 -1 0 0 0 0 0 123 45 0 0 20 0 1 0 10 4096 10 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0",
        )
        .unwrap();
        // 168 ticks at 100 per second: the integer collector this replaced said 1.
        assert_eq!(stat.cpu_seconds(100.0), 1.68);
    }

    #[test]
    fn the_collector_reports_this_process() {
        let collector = ProcessCollector::new().unwrap();
        // Burn at least a few clock ticks of CPU so the counter cannot be zero.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let families = collector.collect();
        let value = |name: &str| {
            let family = families.iter().find(|f| f.name() == name).unwrap();
            let metric = &family.get_metric()[0];
            if family.get_field_type() == prometheus::proto::MetricType::COUNTER {
                metric.get_counter().get_value()
            } else {
                metric.get_gauge().get_value()
            }
        };
        // Whether this sample has a fraction is chance (the test binary's threads share the
        // counter); that it is counted in ticks, not whole seconds, is the test above.
        let cpu = value("process_cpu_seconds_total");
        assert!(cpu > 0.0, "{cpu}");
        assert!(value("process_resident_memory_bytes") > 1_000_000.0);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_threads") >= 1.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(
            started > now - 24.0 * 3600.0 && started <= now + 1.0,
            "{started}"
        );
    }
}
