"""One construct per file; the stacks compose them."""
