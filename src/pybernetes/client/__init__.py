"""The API client every component uses (DESIGN.md principle 1): REST client + kubeconfig,
watches, informers, work queue, leader election, events and expectations."""
