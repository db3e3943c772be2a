//! The running replica set: started with [`MongoReplicaSet::start`], every
//! member stopped when it is dropped. Its state is in [`crate::mongo::state`];
//! starting/stopping members is in [`super::lifecycle`].

use crate::mongo::state::{Member, ReplSetConfig, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// A running replica set. Dropping it stops every member.
pub struct MongoReplicaSet {
    pub(crate) shared: Arc<Shared>,
}

impl MongoReplicaSet {
    /// Binds every member's listener and starts serving, member 0 as primary
    /// in term 1 (as if just elected; the other members know it).
    pub async fn start(config: ReplSetConfig) -> std::io::Result<MongoReplicaSet> {
        if config.members == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a replica set needs at least one member",
            ));
        }
        let listeners = super::lifecycle::bind_all(&config).await?;
        let n = listeners.len();
        let mut members = Vec::new();
        for (i, l) in listeners.iter().enumerate() {
            members.push(Arc::new(Member::new(i, l.local_addr()?, n)));
        }
        let shared = Arc::new(Shared::new(config, members));
        shared.members[0].view().primary_since = Some(Instant::now());
        for (i, l) in listeners.into_iter().enumerate() {
            super::lifecycle::run_member(&shared, i, l);
        }
        tracing::info!(members = n, "mongo testbed started");
        Ok(MongoReplicaSet { shared })
    }

    /// Every member's address, in member order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.shared.members.iter().map(|m| m.addr).collect()
    }

    /// A replica-set connection string listing every member.
    pub fn uri(&self) -> String {
        format!(
            "mongodb://{}/?replicaSet={}",
            self.shared.hosts().join(","),
            self.shared.config.set_name
        )
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The current primary's index, if any.
    pub fn primary(&self) -> Option<usize> {
        self.shared.topology().primary
    }

    /// Stops every member: closes listeners and every connection.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for MongoReplicaSet {
    fn drop(&mut self) {
        for i in 0..self.shared.members.len() {
            super::lifecycle::halt(&self.shared, i);
        }
    }
}
