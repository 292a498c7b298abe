"""Features: the Spark job that turns the event stream into training examples and online history."""
