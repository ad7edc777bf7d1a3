"""telemed_participants: interpreters and second clinicians invited into a live consultation

Each invitation names a user of the consultation's mission and their part (interpreter, with a language,
or clinician); it is revoked by setting revoked_at. A partial unique index allows one active invitation per
user and consultation (SQLite and PostgreSQL).

Revision ID: 0012_participants
Revises: 0011_email (written after 0010_consent; re-chained when main gained 0011_email)
"""
from alembic import op
import sqlalchemy as sa

import core.db

revision = '0012_participants'
down_revision = '0011_email'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('telemed_participants',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('consultation_id', sa.String(length=36), nullable=False),
    sa.Column('mission_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('part', sa.String(length=20), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.Column('invited_by', sa.String(length=36), nullable=False),
    sa.Column('invited_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=36), nullable=True),
    sa.CheckConstraint("part IN ('interpreter', 'clinician')", name=op.f('ck_telemed_participants_part')),
    sa.CheckConstraint("(part = 'interpreter') = (language IS NOT NULL)",
                       name=op.f('ck_telemed_participants_language_of_interpreter')),
    sa.ForeignKeyConstraint(['consultation_id'], ['telemed_consultations.id'],
                            name=op.f('fk_telemed_participants_consultation_id_telemed_consultations')),
    sa.ForeignKeyConstraint(['mission_id'], ['missions.id'], name=op.f('fk_telemed_participants_mission_id_missions')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_telemed_participants_user_id_users')),
    sa.ForeignKeyConstraint(['invited_by'], ['users.id'], name=op.f('fk_telemed_participants_invited_by_users')),
    sa.ForeignKeyConstraint(['revoked_by'], ['users.id'], name=op.f('fk_telemed_participants_revoked_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_telemed_participants'))
    )
    with op.batch_alter_table('telemed_participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_telemed_participants_consultation_id'), ['consultation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_telemed_participants_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_telemed_participants_active', ['consultation_id', 'user_id'], unique=True,
                              sqlite_where=sa.text('revoked_at IS NULL'),
                              postgresql_where=sa.text('revoked_at IS NULL'))


def downgrade():
    with op.batch_alter_table('telemed_participants', schema=None) as batch_op:
        batch_op.drop_index('uq_telemed_participants_active')
        batch_op.drop_index(batch_op.f('ix_telemed_participants_user_id'))
        batch_op.drop_index(batch_op.f('ix_telemed_participants_consultation_id'))
    op.drop_table('telemed_participants')
