-- Approver groups match platform user ids: keep which platform an approver's id belongs to.
ALTER TABLE approvals ADD COLUMN approver_platform TEXT;
