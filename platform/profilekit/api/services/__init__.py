"""The API's service layer: queries, visibility rules and writes behind the routes, one module per
resource. Services raise typed errors (profilekit.errors); the app maps them to HTTP statuses."""
