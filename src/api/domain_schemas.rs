//! OpenAPI schemas of the domain's string enums, kept at the edge so that
//! `domain` names no HTTP or documentation crate. Each schema lists exactly
//! the strings the type serializes to (taken from the type itself, so they
//! cannot drift) under the type's own name.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use crate::domain::api_key::KeyKind;
use crate::domain::card::CardBrand;
use crate::domain::payment_fields::RefundReason;
use crate::domain::permission::Permission;

/// A string schema whose values are what `variants` serialize to.
fn string_enum<T: serde::Serialize>(variants: &[T], description: &str) -> RefOr<Schema> {
    let values: Vec<String> = variants
        .iter()
        .filter_map(|v| serde_json::to_value(v).ok()?.as_str().map(str::to_owned))
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
        .build()
        .into()
}

macro_rules! string_enum_schema {
    ($ty:ty, $description:literal) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                string_enum(&<$ty>::ALL, $description)
            }
        }
        impl utoipa::ToSchema for $ty {}
    };
}

string_enum_schema!(KeyKind, "What a key may be used for.");
string_enum_schema!(CardBrand, "A card network, detected from the number's IIN range.");
string_enum_schema!(Permission, "One resource-scoped permission, written `resource:access`.");
string_enum_schema!(RefundReason, "Why a merchant refunds.");

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::*;

    fn values(schema: RefOr<Schema>) -> Vec<String> {
        let RefOr::T(Schema::Object(object)) = schema else {
            panic!("an inline object schema");
        };
        object
            .enum_values
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn every_variant_is_listed_as_it_serializes() {
        assert_eq!(values(KeyKind::schema()), ["secret", "publishable", "restricted"]);
        assert_eq!(
            values(RefundReason::schema()),
            ["duplicate", "fraudulent", "requested_by_customer"]
        );
        let brands = values(CardBrand::schema());
        assert_eq!(brands.len(), 8);
        assert!(CardBrand::ALL.iter().all(|b| brands.contains(&b.as_str().to_owned())));
        let permissions = values(Permission::schema());
        assert_eq!(permissions.len(), Permission::ALL.len());
        assert!(permissions.contains(&"tokens:reveal".to_owned()));
    }
}
