//! [`PrivateClickhouse`]: a ClickHouse server of the test's own, on free ports, with its own
//! data directory, for tests that stop and start the server (the shared one serves every
//! other test running in parallel). It runs the same binary and the same config template
//! as `deploy/local/services.sh`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camtrail_clickhouse::ClickhouseConfig;

/// A clickhouse-server process owned by a test; killed when dropped.
pub struct PrivateClickhouse {
    dir: tempfile::TempDir,
    http_port: u16,
    child: Option<Child>,
}

fn server_binary() -> PathBuf {
    for candidate in ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "clickhouse-server is not installed (apt-get install clickhouse-server; \
         deploy/local/test.sh installs it)"
    )
}

impl PrivateClickhouse {
    /// Render the config with fresh ports and a temporary data directory, start the server
    /// and wait until it answers.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (http_port, tcp_port) = (crate::free_port(), crate::free_port());
        let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/local/clickhouse");
        let template =
            std::fs::read_to_string(deploy.join("config.xml.in")).expect("config template");
        let root = dir.path().display().to_string();
        let config = template
            .replace("@CH_DIR@", &root)
            .replace(
                "<http_port>8123</http_port>",
                &format!("<http_port>{http_port}</http_port>"),
            )
            .replace(
                "<tcp_port>9000</tcp_port>",
                &format!("<tcp_port>{tcp_port}</tcp_port>"),
            );
        for sub in ["data", "tmp", "user_files", "format_schemas", "logs"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        std::fs::write(dir.path().join("config.xml"), config).expect("write config");
        std::fs::copy(deploy.join("users.xml"), dir.path().join("users.xml")).expect("users.xml");
        let mut server = Self {
            dir,
            http_port,
            child: None,
        };
        server.resume().await;
        server
    }

    /// Where clients connect.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// A config for database `database` on this server.
    pub fn config(&self, database: &str) -> ClickhouseConfig {
        ClickhouseConfig {
            url: self.url(),
            database: database.to_string(),
            ..ClickhouseConfig::default()
        }
    }

    /// Stop the server (SIGTERM, then wait for it to exit; SIGKILL after 30 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Start the server again on the same ports and data, and wait until it answers.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::File::create(self.dir.path().join("logs/stdout.log")).expect("log");
        let child = Command::new(server_binary())
            .arg(format!(
                "--config-file={}",
                self.dir.path().join("config.xml").display()
            ))
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn clickhouse-server");
        self.child = Some(child);
        let client = self.config("default").server_client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(1) = client.query("SELECT 1").fetch_one::<u8>().await {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.dir.path().join("logs/stdout.log"))
                    .unwrap_or_default();
                panic!("private clickhouse-server exited ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "private clickhouse-server did not answer within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for PrivateClickhouse {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
