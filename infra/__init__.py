"""The CDK app that deploys plantwatch's cloud engines to AWS."""
