"""Pure wire formats: query encoding, tracking lines, visitor-data parsing. No I/O."""
