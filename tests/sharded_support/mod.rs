//! Driver helpers the sharded-cluster tests share (`mongo_sharded_restore`,
//! `mongo_sharded_snapshot`, `mongo_sharded_tap`): a client of a router, an admin
//! command that must succeed, a collection written at `w:"majority"`.

#![allow(dead_code)] // each test binary uses its own part

use std::time::Duration;

use mongodb::bson::Document;
use mongodb::options::{ClientOptions, CollectionOptions, WriteConcern};
use mongodb::{Client, Collection};

/// A client of `uri` that waits up to 20 s for a server.
pub async fn client(uri: &str) -> Client {
    let mut o = ClientOptions::parse(uri).await.expect("uri");
    o.server_selection_timeout = Some(Duration::from_secs(20));
    Client::with_options(o).expect("client")
}

/// Runs `cmd` on `admin`; the test fails with the command and the error if it fails.
pub async fn admin(c: &Client, cmd: Document) -> Document {
    c.database("admin")
        .run_command(cmd.clone())
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// Collection `db.name` of `ns`, written at `w:"majority"`.
pub fn coll(c: &Client, ns: &str) -> Collection<Document> {
    let (db, name) = ns.split_once('.').unwrap();
    c.database(db).collection_with_options(
        name,
        CollectionOptions::builder()
            .write_concern(WriteConcern::majority())
            .build(),
    )
}
