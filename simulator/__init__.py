"""Equipment physics, fault injection with ground truth, fleet runner and history generator."""
