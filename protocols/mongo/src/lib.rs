//! tidemark-mongo: a sans-IO decoder and encoder for the MongoDB wire protocol.
//! Feed bytes in any split, get typed messages out; errors are values.
