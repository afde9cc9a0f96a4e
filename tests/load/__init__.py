"""Torture, fuzzing and load: crashes mid-stream, floods, slow and idle clients."""
