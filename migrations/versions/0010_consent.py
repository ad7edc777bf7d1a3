"""consent_records: patients' consent to the versioned consent texts (append-only)

A patient consents to the text in force for a kind of consultation before joining one; a new text version
needs a new consent. Rows are never updated or deleted: triggers refuse both, on SQLite and PostgreSQL.

Revision ID: 0010_consent
Revises: 0009_tak
"""
from alembic import op
import sqlalchemy as sa

import core.db

revision = '0010_consent'
down_revision = '0009_tak'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('consent_records',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('mission_id', sa.String(length=36), nullable=False),
    sa.Column('patient_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('version', sa.String(length=32), nullable=False),
    sa.Column('text_sha256', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', core.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('diagnostic', 'mental_health')", name=op.f('ck_consent_records_kind')),
    sa.ForeignKeyConstraint(['mission_id'], ['missions.id'], name=op.f('fk_consent_records_mission_id_missions')),
    sa.ForeignKeyConstraint(['patient_id'], ['users.id'], name=op.f('fk_consent_records_patient_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_records')),
    sa.UniqueConstraint('patient_id', 'kind', 'version', name=op.f('uq_consent_records_patient_id_kind_version'))
    )
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_records_patient_id'), ['patient_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE FUNCTION consent_records_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'consent_records is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER consent_records_append_only BEFORE UPDATE OR DELETE ON consent_records "
            "FOR EACH ROW EXECUTE FUNCTION consent_records_append_only()"
        )
    else:
        for event in ('UPDATE', 'DELETE'):
            op.execute(
                f"CREATE TRIGGER consent_records_no_{event.lower()} BEFORE {event} ON consent_records "
                "BEGIN SELECT RAISE(ABORT, 'consent_records is append-only'); END"
            )


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS consent_records_append_only ON consent_records")
        op.execute("DROP FUNCTION IF EXISTS consent_records_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS consent_records_no_update")
        op.execute("DROP TRIGGER IF EXISTS consent_records_no_delete")
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_records_patient_id'))
    op.drop_table('consent_records')
