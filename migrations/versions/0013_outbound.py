"""outbound: casevac_outbound_messages (texts pushed back to medics who filed by SMS or satellite); events.views
(per-audience data of an event: the filing medic's minimal payload)

Revision ID: 0013_outbound
Revises: 0012_participants (0010_consent on the branch; re-chained after main's 0011_email and 0012_participants)
"""
from alembic import op
import sqlalchemy as sa

import core.db
from sqlalchemy.dialects import postgresql

revision = '0013_outbound'
down_revision = '0012_participants'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('casevac_outbound_messages',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('gateway_id', sa.String(length=36), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('recipient', sa.String(length=32), nullable=False),
    sa.Column('request_id', sa.String(length=36), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('provider_id', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.String(length=200), nullable=True),
    sa.Column('created_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("channel IN ('twilio', 'smssync', 'sbd')", name=op.f('ck_casevac_outbound_messages_channel')),
    sa.CheckConstraint("state IN ('pending', 'sending', 'sent', 'failed')", name=op.f('ck_casevac_outbound_messages_state')),
    sa.ForeignKeyConstraint(['gateway_id'], ['casevac_gateways.id'], name=op.f('fk_casevac_outbound_messages_gateway_id_casevac_gateways')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_casevac_outbound_messages')),
    sa.UniqueConstraint('request_id', 'status', name='uq_casevac_outbound_messages_request_id_status')
    )
    with op.batch_alter_table('casevac_outbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_casevac_outbound_messages_gateway_id'), ['gateway_id'], unique=False)
        batch_op.create_index('ix_casevac_outbound_messages_state_due', ['state', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('views', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))


def downgrade():
    with op.batch_alter_table('casevac_outbound_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_casevac_outbound_messages_state_due')
        batch_op.drop_index(batch_op.f('ix_casevac_outbound_messages_gateway_id'))
    op.drop_table('casevac_outbound_messages')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('views')
