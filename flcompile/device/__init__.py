"""`flcompile run`: the device side of a compiled plan, streaming each path to the edge server."""
