//! The JSON shapes a body's fields accept, where serde's derives accept
//! more than the contract says (issue 15): an enum is a string only (a
//! derived enum also takes `{"incident": null}`), a location or point is
//! an object only (a derived struct also takes `[lat, lon]`). The stored
//! types keep their derives: bincode relies on the shapes refused here.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, StrDeserializer};
use serde::de::{DeserializeOwned, Deserializer, IntoDeserializer, MapAccess, Visitor};

/// The error of a string's own deserializer, before it becomes the body's.
type StrError = serde::de::value::Error;

/// Reads a string and hands it to `parse` as a deserializer of its own.
struct StringVisitor<F>(F);

impl<'de, T, F> Visitor<'de> for StringVisitor<F>
where
    F: for<'a> FnOnce(StrDeserializer<'a, StrError>) -> Result<T, StrError>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v.into_deserializer()).map_err(E::custom)
    }
}

/// A string read by `parse` (such as a deserializer of a subset of an enum).
pub fn string_with<'de, D, T, F>(d: D, parse: F) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    F: for<'a> FnOnce(StrDeserializer<'a, StrError>) -> Result<T, StrError>,
{
    d.deserialize_str(StringVisitor(parse))
}

/// Reads an object only, then `T` from its entries.
struct ObjectVisitor<T>(PhantomData<T>);

impl<'de, T: DeserializeOwned> Visitor<'de> for ObjectVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// A shape a field's value must have.
trait Shape<T> {
    /// Reads `T` in this shape.
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<T, D::Error>;
}

/// A string naming an enum's value.
struct EnumName;

impl<T: DeserializeOwned> Shape<T> for EnumName {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        string_with(d, |s| T::deserialize(s))
    }
}

/// An object (never an array).
struct Object;

impl<T: DeserializeOwned> Shape<T> for Object {
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        d.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// `null` as `None`, else the value in shape `S`.
struct OptionVisitor<S, T>(PhantomData<(S, T)>);

impl<'de, S: Shape<T>, T> Visitor<'de> for OptionVisitor<S, T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        S::read(d).map(Some)
    }
}

fn optional<'de, S: Shape<T>, T, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
    d.deserialize_option(OptionVisitor::<S, T>(PhantomData))
}

/// An enum value named by a string (`"incident"`), nothing else.
pub fn string_enum<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    EnumName::read(d)
}

/// Like [`string_enum`], for an optional field (`null` is absent).
pub fn string_enum_opt<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    optional::<EnumName, T, D>(d)
}

/// An optional object field (`null` is absent); an array is refused.
pub fn object_opt<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    optional::<Object, T, D>(d)
}
