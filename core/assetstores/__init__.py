"""assetstores."""
