"""The six NEU surface-defect classes, spelled as the real NEU-DET annotations spell them."""

NEU_CLASSES: tuple[str, ...] = (
    "crazing",
    "inclusion",
    "patches",
    "pitted_surface",
    "rolled-in_scale",
    "scratches",
)

# Short names used in the papers' tables (seeds/000 Table 2).
NEU_SHORT = {
    "crazing": "Cr",
    "inclusion": "In",
    "patches": "Pa",
    "pitted_surface": "PS",
    "rolled-in_scale": "RS",
    "scratches": "Sc",
}

FREE = "free"      # the built-in data's defect-free images (``synth.generate(free=N)``), a group of their own
