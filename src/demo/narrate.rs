//! The demo's voice: one line per step for people (`[ 12.3s] …`), one JSON object per
//! step for programs (`{"type":"demo_step","step":…,"seconds":…,…}`).

use std::time::Instant;

use serde_json::{Map, Value};

/// Prints the steps of one run.
pub struct Narrator {
    json: bool,
    started: Instant,
}

impl Narrator {
    pub fn new(json: bool) -> Narrator {
        Narrator {
            json,
            started: Instant::now(),
        }
    }

    /// Seconds since the demo started.
    pub fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Says what step `step` did: `text` for people, `fields` for programs.
    pub fn say(&self, step: &str, text: &str, fields: Value) {
        if self.json {
            let mut o = Map::new();
            o.insert("type".into(), "demo_step".into());
            o.insert("step".into(), step.into());
            o.insert(
                "seconds".into(),
                ((self.elapsed() * 100.0).round() / 100.0).into(),
            );
            if let Value::Object(f) = fields {
                o.extend(f);
            }
            println!("{}", Value::Object(o));
        } else {
            let mut lines = text.lines();
            println!(
                "[{:6.1}s] {}",
                self.elapsed(),
                lines.next().unwrap_or_default()
            );
            for l in lines {
                println!("          {l}");
            }
        }
    }
}
