"""The admin API's operation registry (imported by every admin API module)."""

from server.api_operations import Api

api = Api("api_v1", url_prefix="/api/v1")
