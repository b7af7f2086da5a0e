//! Exports `baton:connector/connector@0.0.9`, which the host must refuse by name.

wit_bindgen::generate!({ world: "plugin", path: "wit" });

struct Component;

impl exports::baton::connector::connector::Guest for Component {
    fn get_metadata() -> String {
        "old".into()
    }
}

export!(Component);
