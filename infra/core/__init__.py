"""The foundation every other module stands on: config, errors, the metrics endpoint."""
