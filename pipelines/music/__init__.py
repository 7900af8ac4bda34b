"""Music generation (one-to-many): next-event prediction trained with teacher forcing on Bach
chorales (or the user's MIDI/MusicXML, or the JSB split), then sampling from a primer."""
