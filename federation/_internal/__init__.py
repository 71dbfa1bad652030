"""Private helpers shared by the wings: not part of the library's surface."""
