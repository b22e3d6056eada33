//! Pictures and exchange formats of a track: the PNG map ([`map`]) drawn with a small
//! bitmap font ([`font`]) on a [`canvas::Canvas`], and GeoJSON ([`geojson`]).

pub mod canvas;
pub mod font;
pub mod geojson;
pub mod map;
