//! Small OpenAPI schema builders shared by the route annotations, the field
//! schemas and the document itself (`api::openapi`), kept apart so that the
//! document can list the routes without the routes depending on it.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A string that is always `value`, e.g. the `object` field of a resource.
pub fn literal(value: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
        .build()
}

/// The shape of an id with `prefix` (`domain::ids`: the prefix, then 24
/// base62 characters).
pub fn id_schema(prefix: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(format!("^{prefix}[0-9A-Za-z]{{24}}$")))
}
