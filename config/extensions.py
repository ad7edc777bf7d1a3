"""Extensions created unbound; create_app binds them with init_app."""

from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

# Deterministic constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING))
migrate = Migrate()
api = Api()
socketio = SocketIO()
jwt = JWTManager()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


def redis_client(url: str):
    """The one way this code base connects to Redis. Fail fast when it is away: one retry after a short
    pause (enough for a connection dropped by a Redis restart), not redis-py's default three with backoff,
    which held a request about 3 s before its 503 or its fallback to the database."""
    import redis
    from redis.backoff import ConstantBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url, socket_timeout=2, socket_connect_timeout=1, health_check_interval=10, retry=Retry(ConstantBackoff(0.05), 1)
    )
