SELECT r.name, re.started_at, re.entities_checked, re.entities_matched, re.actions_taken, re.status
FROM rule_executions re JOIN automation_rules r ON re.rule_id = r.id
WHERE re.started_at > now() - interval '24 hours' ORDER BY re.started_at DESC;
SELECT ah.created_at, r.name as rule_name, ah.entity_name, ah.action_type, ah.old_value, ah.new_value, ah.status
FROM action_history ah JOIN automation_rules r ON ah.rule_id = r.id
WHERE ah.created_at > now() - interval '24 hours' ORDER BY ah.created_at DESC;
SELECT * FROM action_history WHERE status = 'failed' AND created_at > now() - interval '7 days';
