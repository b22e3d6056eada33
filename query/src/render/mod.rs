//! Pictures and exchange formats of a track: the PNG map ([`map`], drawn with
//! `camtrail-render`) and GeoJSON ([`geojson`]).

pub mod geojson;
pub mod map;
