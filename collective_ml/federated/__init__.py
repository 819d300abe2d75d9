"""Federated ensembles: strategies (FedAvg, FedProx, federated MoE, gossip, Reptile, robust
aggregation), clients, and the Flower ServerApp/ClientApp."""
