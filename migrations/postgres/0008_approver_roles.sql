-- The platform roles an approver held when approving (Discord role ids, JSON array): an approver
-- group may name a role (`discord-role:…`), and the approval must go on filling that group when
-- the quorum is counted again later.
ALTER TABLE approvals ADD COLUMN approver_roles TEXT;
