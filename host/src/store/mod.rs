//! The `.c1z` store: baton's file format, protobuf records, writer and reader.

pub mod c1z;
pub mod ids;
pub mod proto;
pub mod reader;
pub mod schema;
pub mod writer;
