//! A small W3C WebDriver client over reqwest: enough to drive headless
//! Chromium through chromedriver (sessions, navigation, clicks, keys,
//! scripts, screenshots) without another dependency.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

/// How long chromedriver may take to answer `/status`.
const DRIVER_START_SECS_MAX: u64 = 20;
/// W3C's key for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the browser and its driver are, or why the tests cannot run.
pub struct BrowserPaths {
    /// The Chromium binary.
    pub chromium: PathBuf,
    /// The chromedriver binary.
    pub driver: PathBuf,
}

fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Finds Chromium and chromedriver (env `TICKETLOG_CHROMIUM`,
/// `TICKETLOG_CHROMEDRIVER`, else `PATH`). `None` when the tests should be
/// skipped (`TICKETLOG_SKIP_BROWSER=1`); panics with what to install otherwise.
pub fn browser_paths() -> Option<BrowserPaths> {
    if std::env::var("TICKETLOG_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("TICKETLOG_SKIP_BROWSER=1: browser tests skipped");
        return None;
    }
    let chromium = std::env::var_os("TICKETLOG_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| which(&["chromium", "chromium-browser", "google-chrome", "chrome"]));
    let driver = std::env::var_os("TICKETLOG_CHROMEDRIVER")
        .map(PathBuf::from)
        .or_else(|| which(&["chromedriver"]));
    match (chromium, driver) {
        (Some(chromium), Some(driver)) => Some(BrowserPaths { chromium, driver }),
        (c, d) => panic!(
            "browser tests need Chromium and chromedriver (found chromium: {c:?}, chromedriver: {d:?}). \
             Install them with `apt-get install -y chromium chromium-driver`, point \
             TICKETLOG_CHROMIUM / TICKETLOG_CHROMEDRIVER at them, or set TICKETLOG_SKIP_BROWSER=1 to skip."
        ),
    }
}

/// A running chromedriver, killed on drop.
pub struct Driver {
    child: Child,
    base: String,
    chromium: PathBuf,
    http: reqwest::Client,
}

impl Driver {
    /// Starts chromedriver on a free local port and waits until it is ready.
    pub async fn start(paths: &BrowserPaths) -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&paths.driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", paths.driver.display()));
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            chromium: paths.chromium.clone(),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(DRIVER_START_SECS_MAX);
        loop {
            let ready = driver
                .http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .ok()
                .map(|r| r.json::<Value>());
            if let Some(body) = ready {
                if body.await.is_ok_and(|v| v["value"]["ready"] == true) {
                    return driver;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a new browser (own profile, so own localStorage) of the given size.
    pub async fn session(&self, width: u32, height: u32) -> Session {
        let args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--hide-scrollbars".into(),
            "--force-device-scale-factor=1".into(),
            format!("--window-size={width},{height}"),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {"binary": self.chromium, "args": args}
        }}});
        let r: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .expect("new session request")
            .json()
            .await
            .expect("new session answer");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        let s = Session {
            base: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
        };
        s.set_size(width, height).await;
        s
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser window.
pub struct Session {
    base: String,
    http: reqwest::Client,
}

/// A reference to an element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"))
    }

    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r: Value = req
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| format!("answer: {e}"))?;
        if let Some(err) = r["value"]["error"].as_str() {
            return Err(format!("{err}: {}", r["value"]["message"]));
        }
        Ok(r["value"].clone())
    }

    /// Clicks the element matching `css`, finding it again if the page
    /// re-rendered it between finding and clicking (live pages do).
    pub async fn click_css(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .try_call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            let clicked = match found {
                Ok(v) => match v[ELEMENT_KEY].as_str() {
                    Some(id) => {
                        self.try_call(
                            reqwest::Method::POST,
                            &format!("/element/{id}/click"),
                            Some(json!({})),
                        )
                        .await
                    }
                    None => Err(format!("no element id: {v}")),
                },
                Err(e) => Err(e),
            };
            match clicked {
                Ok(_) => return,
                Err(e) => assert!(Instant::now() < deadline, "clicking {css}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
    }

    /// Resizes the window.
    pub async fn set_size(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Navigates and waits for the load.
    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The current address.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> Element {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        Element(
            v[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("no element id for {css}: {v}"))
                .to_string(),
        )
    }

    /// Clicks an element.
    pub async fn click(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// Types into an element (real key events).
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Empties an input.
    pub async fn clear(&self, e: &Element) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// Runs a script (`return ...;`) with arguments and returns its value.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Polls `script` until it returns something truthy (not null, false,
    /// 0 or ""); panics with `what` after `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        script: &str,
        args: Value,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.js(script, args.clone()).await;
            let truthy = !matches!(&v, Value::Null | Value::Bool(false))
                && v.as_f64() != Some(0.0)
                && v.as_str() != Some("");
            if truthy {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what} (last value {v})"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Writes a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("screenshot is base64"))
            .expect("screenshot decodes");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, png).expect("screenshot written");
    }

    /// Closes the browser.
    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
