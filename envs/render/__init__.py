"""The pygame viewer and recorders shared by every world."""
