"""The Redis side of sources: the streams and lists applications write work into (on
runner's Redis or their own), and the figures every daemon adds up in runner's Redis."""
