"""The API's routes by area: the seed's model services, the catalogue, health."""
