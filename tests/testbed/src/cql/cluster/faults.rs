//! How a replica misbehaves when it receives writes, set per node from tests or the
//! control endpoint: slow (mutations and acks arrive late), acks lost (the write lands,
//! the coordinator never hears), or mutations lost. A coordinator that does not collect
//! enough acks within `write_timeout` answers WriteTimeout with the true counts.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A replica's write-path fault. The default is a healthy replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Mutations reach the replica (and its ack reaches the coordinator) this late.
    #[serde(default)]
    pub delay_ms: u64,
    /// The replica applies mutations but its acks are lost.
    #[serde(default)]
    pub drop_acks: bool,
    /// Mutations are lost before reaching the replica (nothing applied, no ack).
    #[serde(default)]
    pub drop_writes: bool,
}

/// What happens to one mutation sent to a replica with a given fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// When the mutation is applied, or `None` if it never is.
    pub apply_after: Option<Duration>,
    /// When the coordinator receives the ack, or `None` if it never does.
    pub ack_after: Option<Duration>,
}

impl Fault {
    pub fn is_healthy(&self) -> bool {
        *self == Fault::default()
    }

    pub fn delivery(&self) -> Delivery {
        let delay = Duration::from_millis(self.delay_ms);
        if self.drop_writes {
            return Delivery {
                apply_after: None,
                ack_after: None,
            };
        }
        Delivery {
            apply_after: Some(delay),
            ack_after: (!self.drop_acks).then_some(delay),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries() {
        let healthy = Fault::default().delivery();
        assert_eq!(healthy.apply_after, Some(Duration::ZERO));
        assert_eq!(healthy.ack_after, Some(Duration::ZERO));
        let slow = Fault {
            delay_ms: 300,
            ..Fault::default()
        };
        assert_eq!(slow.delivery().ack_after, Some(Duration::from_millis(300)));
        let no_acks = Fault {
            drop_acks: true,
            ..Fault::default()
        };
        assert_eq!(no_acks.delivery().apply_after, Some(Duration::ZERO));
        assert_eq!(no_acks.delivery().ack_after, None);
        let lost = Fault {
            drop_writes: true,
            ..Fault::default()
        };
        assert_eq!(lost.delivery().apply_after, None);
        assert!(serde_json::from_str::<Fault>(r#"{"delay_ms": 5, "bogus": 1}"#).is_err());
        let parsed: Fault = serde_json::from_str(r#"{"drop_acks": true}"#).unwrap();
        assert_eq!(parsed, no_acks);
    }
}
