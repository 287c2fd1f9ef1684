"""The constructs of the plantwatch stack, one per concern.

They live in one stack on purpose: the detector function subscribes to the output
bucket's notifications while the bucket's name is in the function's environment, and
across two stacks that reference would be a cycle.
"""
