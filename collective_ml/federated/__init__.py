"""Federated ensembles: strategies (FedAvg, FedProx, federated MoE, gossip, Reptile, robust
aggregation), clients, and the Flower ServerApp/ClientApp.

* :mod:`.model` -- :class:`FederatedMoE`: MLP experts (an ``Ensemble``) and the MoE ``Router``;
* :mod:`.client` -- a client's data and its local training (:func:`client_update`);
* :mod:`.aggregate` -- FedAvg, expert-weighted FedAvg, median, trimmed mean, screening,
  Reptile's step, gossip pairing, fault injection;
* :mod:`.insight` -- statistics-only exchange and the server's meta-learner;
* :mod:`.runner` -- the in-process runner for every strategy (:func:`run_federated`);
* :mod:`.flower` -- the same FedAvg-family rounds as a Flower ``ServerApp``/``ClientApp``;
* :mod:`.gossip_ray` -- gossip with each client a Ray actor.
"""
