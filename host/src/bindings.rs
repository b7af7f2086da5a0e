//! Host-side bindings of `wit/connector.wit` (contract `baton:connector@0.1.0`).

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});

pub use baton::connector::types as wit;

/// The contract this host implements, as a component names its export.
pub const CONTRACT_EXPORT: &str = "baton:connector/connector@0.1.0";
