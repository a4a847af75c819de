//! Attack reports on disk: `state_dir/attacks/<attack_uuid>.json`, each
//! written atomically (a temporary file in the same folder, fsync, rename,
//! fsync of the folder) so that a reader never sees half a report and a
//! crash leaves the old one or the new one; bounded retention (the oldest
//! beyond `max_reports`, and those older than `max_report_age_days`, are
//! deleted); list and get for the API.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::AttackReport;

/// The folder of the reports under a state directory.
pub fn attacks_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("attacks")
}

/// A report's headline, as the attack list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportSummary {
    pub attack_uuid: String,
    pub service: String,
    pub state: String,
    pub start: u64,
    pub end: Option<u64>,
    pub duration_secs: u64,
    pub types: Vec<String>,
    pub attack_severity: String,
    pub peak_pps: f64,
    pub peak_bps: f64,
}

impl From<&AttackReport> for ReportSummary {
    fn from(r: &AttackReport) -> Self {
        ReportSummary {
            attack_uuid: r.attack_uuid.clone(),
            service: r.service.clone(),
            state: r.state.clone(),
            start: r.start,
            end: r.end,
            duration_secs: r.duration_secs,
            types: r.types.clone(),
            attack_severity: r.attack_severity.clone(),
            peak_pps: r.peak_pps,
            peak_bps: r.peak_bps,
        }
    }
}

/// The reports of one node.
#[derive(Debug, Clone)]
pub struct ReportStore {
    dir: PathBuf,
    max_reports: usize,
    max_age: Duration,
}

/// A uuid as Moat makes them (lowercase hex and dashes): nothing else is
/// ever turned into a path.
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

impl ReportStore {
    /// The reports of `cfg`: under its state dir, with its retention.
    pub fn of_config(cfg: &crate::config::Config) -> Self {
        let d = &cfg.detection;
        ReportStore::new(
            attacks_dir(&cfg.state_dir()),
            d.max_reports as usize,
            d.max_report_age_days,
        )
    }

    pub fn new(dir: PathBuf, max_reports: usize, max_age_days: u32) -> Self {
        ReportStore {
            dir,
            max_reports: max_reports.max(1),
            max_age: Duration::from_secs(u64::from(max_age_days) * 86_400),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes `r` atomically (see the module docs).
    pub fn write(&self, r: &AttackReport) -> anyhow::Result<()> {
        anyhow::ensure!(valid_id(&r.attack_uuid), "bad attack uuid {:?}", r.attack_uuid);
        if !self.dir.is_dir() {
            // Private like the state folder it lives in: reports name
            // sources and services.
            use std::os::unix::fs::DirBuilderExt;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&self.dir)
                .with_context(|| format!("{}", self.dir.display()))?;
        }
        let path = self.path(&r.attack_uuid);
        let text = serde_json::to_vec_pretty(r)?;
        // One helper for every file the node keeps: an unpredictable
        // temporary name opened O_EXCL (never through a planted link),
        // fsync, rename, fsync of the folder; the report is 0600.
        crate::persist::write_atomic(&path, &text, 0o600).with_context(|| format!("{}", path.display()))?;
        Ok(())
    }

    /// One report; `None` when there is no such report (or the id is not
    /// one Moat makes).
    pub fn get(&self, id: &str) -> anyhow::Result<Option<AttackReport>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let path = self.path(id);
        match fs::read(&path) {
            Ok(b) => Ok(Some(
                serde_json::from_slice(&b).with_context(|| format!("{}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}", path.display())),
        }
    }

    /// Report files with their modification times, newest first.
    fn files(&self) -> anyhow::Result<Vec<(SystemTime, String)>> {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("{}", self.dir.display())),
        };
        let mut v = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json").filter(|id| valid_id(id)) else {
                continue;
            };
            let mtime = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            v.push((mtime, id.to_string()));
        }
        v.sort_by(|a, b| b.cmp(a));
        Ok(v)
    }

    /// Every report's summary, the most recently updated first; unreadable
    /// files are skipped.
    pub fn list(&self) -> anyhow::Result<Vec<ReportSummary>> {
        Ok(self
            .files()?
            .iter()
            .filter_map(|(_, id)| self.get(id).ok().flatten())
            .map(|r| ReportSummary::from(&r))
            .collect())
    }

    /// Deletes the reports beyond `max_reports` (oldest first) and those
    /// last written more than `max_age` before `now`; returns how many.
    pub fn prune(&self, now: SystemTime) -> anyhow::Result<usize> {
        let mut n = 0;
        for (i, (mtime, id)) in self.files()?.iter().enumerate() {
            let old = now.duration_since(*mtime).is_ok_and(|age| age > self.max_age);
            if i >= self.max_reports || old {
                fs::remove_file(self.path(id)).with_context(|| format!("report {id}"))?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ReportBuilder;
    use super::*;

    fn report(id: &str) -> AttackReport {
        ReportBuilder::new(id.into(), "web", 1000, 64, 10).snapshot()
    }

    #[test]
    fn write_get_list_and_overwrite() {
        let d = tempfile::tempdir().expect("tmp");
        let s = ReportStore::new(attacks_dir(d.path()), 10, 30);
        assert!(s.list().expect("empty list").is_empty());
        let mut r = report("0a1b-2c");
        s.write(&r).expect("write");
        r.peak_pps = 123.0;
        s.write(&r).expect("rewrite");
        assert_eq!(s.get("0a1b-2c").expect("get"), Some(r.clone()));
        assert_eq!(s.list().expect("list"), vec![ReportSummary::from(&r)]);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(s.dir())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // Ids that are not Moat's never become paths.
        assert_eq!(s.get("../../etc/passwd").expect("refused"), None);
        assert_eq!(s.get("ffff").expect("absent"), None);
        assert!(s.write(&report("../x")).is_err());
    }

    #[test]
    fn retention_by_count_and_age() {
        let d = tempfile::tempdir().expect("tmp");
        let s = ReportStore::new(d.path().to_path_buf(), 3, 1);
        for i in 0..5 {
            s.write(&report(&format!("{i:04x}"))).expect("write");
            // Distinct modification times.
            let f = fs::File::options()
                .write(true)
                .open(s.path(&format!("{i:04x}")))
                .expect("open");
            f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + i))
                .expect("mtime");
        }
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_010);
        assert_eq!(s.prune(now).expect("prune"), 2, "the two oldest beyond 3");
        let ids: Vec<String> = s.list().expect("list").into_iter().map(|r| r.attack_uuid).collect();
        assert_eq!(ids, ["0004", "0003", "0002"]);
        // A day and a bit later, all are too old.
        let later = now + Duration::from_secs(86_400 + 20);
        assert_eq!(s.prune(later).expect("prune"), 3);
        assert!(s.list().expect("list").is_empty());
    }
}
