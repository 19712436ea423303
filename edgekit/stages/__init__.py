"""The build chain, one module per stage; each writes a folder artifact with a manifest."""
