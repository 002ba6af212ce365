"""The retry proof: a non-atomic migration cut off part-way and run again ends where a clean apply
does (`cuts`: where to cut and the verdict, pure; `proof`: the unit, on databases of its own)."""
