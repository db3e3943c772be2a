//! Decoder factories by protocol, and the registry every command uses.
//!
//! The registry sits above the protocol decoders: it names them, they only
//! implement [`FlowDecoder`](super::seam::FlowDecoder).

use std::collections::HashMap;

use super::cql::{CqlFlowDecoder, SharedState};
use super::detect::Protocol;
use super::mongo::MongoFlowDecoder;
use super::seam::{FlowDecoder, FlowInfo, NoopDecoder};

/// Makes a decoder for a new flow.
pub type DecoderFactory = Box<dyn Fn(&FlowInfo) -> Box<dyn FlowDecoder> + Send + Sync>;

/// Decoder factories by protocol.
#[derive(Default)]
pub struct DecoderRegistry {
    factories: HashMap<Protocol, DecoderFactory>,
}

impl DecoderRegistry {
    /// An empty registry: every flow gets a [`NoopDecoder`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `factory` the decoder of `protocol`, replacing any earlier one.
    pub fn register<F>(&mut self, protocol: Protocol, factory: F)
    where
        F: Fn(&FlowInfo) -> Box<dyn FlowDecoder> + Send + Sync + 'static,
    {
        self.factories.insert(protocol, Box::new(factory));
    }

    /// A decoder for the flow, by its protocol; a [`NoopDecoder`] if none registered.
    pub fn create(&self, info: &FlowInfo) -> Box<dyn FlowDecoder> {
        match self.factories.get(&info.protocol) {
            Some(f) => f(info),
            None => Box::new(NoopDecoder),
        }
    }
}

/// The decoders every command uses: CQL and MongoDB. All CQL flows of one registry
/// share one state, so a statement prepared on one connection resolves EXECUTEs on
/// another to the same node.
pub fn default_registry() -> DecoderRegistry {
    registry_with_cql_state().0
}

/// [`default_registry`] and the state its CQL flows share, for a caller that keeps
/// what they learn (`tap` stores the schema the decoders learned).
pub fn registry_with_cql_state() -> (DecoderRegistry, SharedState) {
    let mut reg = DecoderRegistry::new();
    let shared = SharedState::default();
    let state = shared.clone();
    reg.register(Protocol::Cql, move |info| {
        Box::new(CqlFlowDecoder::new(info, shared.clone()))
    });
    reg.register(Protocol::Mongo, |info| {
        Box::new(MongoFlowDecoder::new(info))
    });
    (reg, state)
}

/// Renders a value the store kept in its protocol's own form (see
/// [`LineValue::kept`](super::line_value::LineValue::kept)) as the `write` line printed
/// it: each form goes to the decoder that kept it.
pub fn render_kept(bytes: &[u8], form: super::line_value::RawForm) -> serde_json::Value {
    use super::line_value::RawForm;
    match form {
        RawForm::BsonDocument | RawForm::BsonArray => super::mongo::values::render(bytes, form),
        RawForm::CqlValues => super::cql::extract::lazy::render_kept(bytes),
    }
}
