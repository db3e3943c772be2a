//! CQL statement parser (nom): what a statement changes, for write extraction.
