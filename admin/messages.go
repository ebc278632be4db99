package admin

import (
	"fmt"
	"html/template"
)

// messages are the panel's words, English and Chinese. %v marks an
// argument, in order.
var messages = map[string][2]string{
	"admin":           {"admin", "管理"},
	"theme_label":     {"Theme", "主题"},
	"theme_dark":      {"Dark", "深色"},
	"theme_light":     {"Light", "浅色"},
	"logout":          {"Log out", "退出登录"},
	"nav_label":       {"Admin pages", "管理页面"},
	"nav_providers":   {"Providers", "服务商"},
	"nav_models":      {"Models", "模型路由"},
	"nav_keys":        {"Client keys", "客户端密钥"},
	"nav_test":        {"Test", "在线测试"},
	"nav_usage":       {"Usage", "用量"},
	"nav_audit":       {"Audit log", "审计日志"},
	"footer_session":  {"Sessions end after 30 minutes without activity, and after 12 hours in any case.", "会话在 30 分钟无操作后结束，最长 12 小时。"},
	"footer_private":  {"This page loads nothing from any other host.", "本页面不会从任何其他主机加载内容。"},
	"login_title":     {"Log in to the admin panel", "登录管理面板"},
	"login_lead":      {"The password is the server's ADMIN_PASSWORD.", "密码即服务器的 ADMIN_PASSWORD。"},
	"password":        {"Password", "密码"},
	"login_button":    {"Log in", "登录"},
	"session_note":    {"You stay logged in for 30 minutes without activity, 12 hours at most. Repeated wrong passwords make you wait longer before the next try.", "无操作 30 分钟后自动退出，最长保持 12 小时。多次输错密码后需等待更久才能重试。"},
	"login_throttled": {"Too many wrong passwords from your address: try again in %v seconds.", "你的地址输错密码次数过多：请在 %v 秒后重试。"},
	"login_wrong":     {"Wrong password.", "密码错误。"},
	"back":            {"Back", "返回"},
	"not_found":       {"There is no such page.", "页面不存在。"},

	"origin_store":   {"panel", "面板"},
	"origin_config":  {"config file", "配置文件"},
	"origin_preset":  {"preset", "预设"},
	"origin_seed":    {"variable %v", "环境变量 %v"},
	"origin":         {"From", "来源"},
	"read_only":      {"read-only", "只读"},
	"not_running":    {"saved, not running", "已保存，未生效"},
	"edit":           {"Edit", "编辑"},
	"delete":         {"Delete", "删除"},
	"remove":         {"Remove", "移除"},
	"save":           {"Save", "保存"},
	"save_note":      {"Checked against the whole configuration and applied at once; open streams are not touched.", "保存前会与整个配置一起校验，并立即生效；进行中的流不受影响。"},
	"confirm_delete": {"Delete %v? Running traffic stops using it at once.", "确定删除 %v？正在运行的流量会立即停止使用它。"},
	"requests":       {"Requests", "请求"},
	"failures":       {"Failures", "失败"},
	"until":          {"until %v", "直到 %v"},
	"all":            {"all", "全部"},
	"never":          {"never", "永不"},
	"copy":           {"Copy", "复制"},
	"done":           {"Done", "完成"},
	"show":           {"Show", "显示"},

	"providers_lead":       {"Upstream APIs and their keys. Entries from the config file and the seed variables are read-only here; keys are shown by name and last four characters only. Key health updates live.", "上游 API 及其密钥。来自配置文件与环境变量的条目在此只读；密钥只显示名称与末四位。密钥健康状态实时更新。"},
	"providers_empty":      {"No provider yet. Add one to route models through the gateway.", "还没有服务商。添加一个即可通过网关路由模型。"},
	"provider_add":         {"Add provider", "添加服务商"},
	"provider_new_title":   {"New provider", "新建服务商"},
	"provider_edit_title":  {"Edit provider", "编辑服务商"},
	"hosts":                {"Hosts", "主机"},
	"breaker":              {"Circuit breaker", "熔断器"},
	"breaker_closed":       {"closed (in use)", "关闭（正常使用）"},
	"breaker_open":         {"open (last resort only)", "打开（仅作最后备选）"},
	"breaker_half_open":    {"half-open (probing)", "半开（试探中）"},
	"key_name":             {"Key", "密钥"},
	"key_masked":           {"Value", "值"},
	"key_state":            {"Health", "健康状态"},
	"state_ok":             {"ok", "正常"},
	"state_cooling":        {"cooling down", "冷却中"},
	"state_disabled":       {"disabled", "已停用"},
	"key_locked":           {"cannot be decrypted with this server's LLMPROXY_SECRET_KEY: remove it or enter it again", "无法用本服务器的 LLMPROXY_SECRET_KEY 解密：请移除或重新输入"},
	"enable_key":           {"Re-enable", "重新启用"},
	"no_keys":              {"No server-side key: the client's own key is passed on.", "没有服务端密钥：使用客户端自己的密钥。"},
	"f_name":               {"Name", "名称"},
	"f_kind":               {"API kind", "API 类型"},
	"f_base_url":           {"Base URL", "基础地址"},
	"f_preset":             {"Preset", "预设"},
	"f_weight":             {"Weight", "权重"},
	"f_models":             {"Models it serves", "提供的模型"},
	"f_headers":            {"Extra headers", "额外请求头"},
	"f_transport":          {"Transport", "传输方式"},
	"f_responses":          {"Responses API", "Responses API"},
	"f_api_version":        {"API version", "API 版本"},
	"f_keys":               {"Keys", "密钥"},
	"kind_default":         {"default (openai, or the preset's)", "默认（openai，或预设的类型）"},
	"transport_default":    {"default (the server's)", "默认（服务器设置）"},
	"responses_default":    {"default", "默认"},
	"help_provider_name":   {"Letters, digits, '.', '_' and '-'. Model routes name it; it cannot be changed later.", "字母、数字、'.'、'_' 和 '-'。模型路由通过它引用，保存后不能修改。"},
	"help_kind":            {"The API it speaks: openai (any OpenAI-compatible API), anthropic, gemini, or azure.", "它使用的 API：openai（任何 OpenAI 兼容接口）、anthropic、gemini 或 azure。"},
	"help_base_url":        {"In the SDK convention, e.g. https://api.openai.com/v1 or https://api.anthropic.com. Give a base URL or a preset, not both.", "按 SDK 约定填写，例如 https://api.openai.com/v1 或 https://api.anthropic.com。基础地址与预设二选一。"},
	"help_preset":          {"Or use a preset's address, key style and headers (openai, claude, gemini, deepseek, …).", "或使用预设的地址、密钥方式与请求头（openai、claude、gemini、deepseek 等）。"},
	"help_weight":          {"For the weighted strategies. Default 1.", "用于加权策略，默认 1。"},
	"help_provider_models": {"Model names or * patterns it serves when no route names them. Empty: only what routes send it.", "当没有路由时它所服务的模型名或 * 模式。留空：只处理路由发给它的请求。"},
	"newkey_name":          {"New key name", "新密钥名称"},
	"newkey_value":         {"New key", "新密钥"},
	"add_key":              {"Add another key", "再添加一个密钥"},
	"help_key_value":       {"env:NAME reads the key from that environment variable of the server; anything else is the key itself, stored encrypted (AES-256-GCM). It is never shown again: pages show its last four characters.", "env:NAME 表示从服务器的该环境变量读取密钥；其他内容即密钥本身，加密存储（AES-256-GCM）。保存后不再显示，页面只显示末四位。"},
	"help_key_env_only":    {"Only env:NAME references can be saved: this server has no LLMPROXY_SECRET_KEY to encrypt a literal key with. Set it (openssl rand -hex 32) and restart to save keys here.", "只能保存 env:NAME 引用：本服务器未设置用于加密密钥的 LLMPROXY_SECRET_KEY。设置它（openssl rand -hex 32）并重启后即可在此保存密钥。"},
	"more_settings":        {"More settings", "更多设置"},
	"help_headers":         {"One \"Name: value\" per line, sent with every request. Values of credential-like headers are shown as [kept]: leave it to keep the saved value.", "每行一个 \"名称: 值\"，随每个请求发送。类似凭据的请求头值显示为 [kept]，保持不变即沿用已保存的值。"},
	"help_api_version":     {"Sent as ?api-version= (Azure).", "作为 ?api-version= 发送（Azure）。"},

	"models_lead":        {"Public model names (or * patterns) and the providers that serve them. Seed 001's keyword rule — a model name containing a word goes to a provider — is the pattern *word* here.", "公开的模型名（或 * 模式）以及为其提供服务的服务商。种子 001 的关键词规则（模型名包含某个词就转发到某服务商）在这里就是模式 *关键词*。"},
	"models_empty":       {"No model route yet.", "还没有模型路由。"},
	"model_add":          {"Add model route", "添加模型路由"},
	"model_new_title":    {"New model route", "新建模型路由"},
	"model_edit_title":   {"Edit model route", "编辑模型路由"},
	"f_model":            {"Model", "模型"},
	"f_model_name":       {"Model name or pattern", "模型名或模式"},
	"f_targets":          {"Targets", "目标"},
	"f_strategy":         {"Strategy", "策略"},
	"f_pricing":          {"Pricing", "价格"},
	"f_provider":         {"Provider", "服务商"},
	"f_upstream_model":   {"Upstream model", "上游模型"},
	"same_model":         {"the requested name", "与请求相同"},
	"pattern":            {"pattern", "模式"},
	"price_text":         {"in %v / out %v per 1M (%v)", "输入 %v / 输出 %v 每百万（%v）"},
	"help_model_name":    {"A name clients ask for (gpt-4o), or a pattern where * stands for anything: *gpt-4* catches every model whose name contains gpt-4 — seed 001's keyword rule. More literal patterns win.", "客户端请求的模型名（如 gpt-4o），或用 * 代表任意字符的模式：*gpt-4* 匹配所有名称包含 gpt-4 的模型，即种子 001 的关键词规则。越具体的模式优先。"},
	"strategy_default":   {"fallback (in order)", "fallback（按顺序）"},
	"help_strategy":      {"How targets are ordered for each request; the rest are the failover order.", "每个请求如何排列目标；其余目标为故障转移顺序。"},
	"add_target":         {"Add another target", "再添加一个目标"},
	"help_targets":       {"Each target is a provider and, optionally, the model name to ask it for.", "每个目标是一个服务商，以及（可选）向其请求的模型名。"},
	"f_currency":         {"Currency", "货币"},
	"f_input_per_1m":     {"Input per 1M tokens", "每百万输入 token"},
	"f_cached_per_1m":    {"Cached input per 1M", "每百万缓存输入"},
	"f_output_per_1m":    {"Output per 1M tokens", "每百万输出 token"},
	"help_pricing":       {"Optional. Prices usage and client key budgets; currency defaults to usd.", "可选。用于计算用量费用与客户端密钥预算；货币默认 usd。"},
	"f_metadata_section": {"What /v1/models shows", "/v1/models 显示的信息"},
	"f_display_name":     {"Display name", "显示名称"},
	"f_description":      {"Description", "描述"},
	"f_context_window":   {"Context window", "上下文窗口"},
	"f_max_input":        {"Max input tokens", "最大输入 token"},
	"f_max_output":       {"Max output tokens", "最大输出 token"},
	"f_flags":            {"Flags", "标记"},
	"f_metadata":         {"Metadata (JSON object)", "元数据（JSON 对象）"},
	"help_metadata":      {"Any JSON object, shown as is in the model list.", "任意 JSON 对象，原样显示在模型列表中。"},

	"keys_lead":         {"Keys you hand out to clients. The secret is shown once, when the key is created; only its SHA-256 digest is stored. A revoked key is refused from its next request on.", "分发给客户端的密钥。密钥只在创建时显示一次；服务器只保存其 SHA-256 摘要。吊销后，下一个请求即被拒绝。"},
	"keys_empty":        {"No client key yet.", "还没有客户端密钥。"},
	"key_add":           {"Create client key", "创建客户端密钥"},
	"key_new_title":     {"New client key", "新建客户端密钥"},
	"key_edit_title":    {"Edit client key", "编辑客户端密钥"},
	"key_new_lead":      {"The secret is generated here and shown once, after you create the key.", "密钥由服务器生成，创建后只显示一次。"},
	"key_create":        {"Create key", "创建密钥"},
	"status":            {"Status", "状态"},
	"status_active":     {"active", "有效"},
	"status_revoked":    {"revoked", "已吊销"},
	"status_expired":    {"expired", "已过期"},
	"scopes":            {"Scopes", "范围"},
	"limits":            {"Limits", "限制"},
	"no_limits":         {"none", "无"},
	"usage_n_days":      {"Usage, %v days", "近 %v 天用量"},
	"created_at":        {"created %v", "创建于 %v"},
	"n_requests":        {"%v requests", "%v 次请求"},
	"n_tokens":          {"%v in / %v out tokens", "输入 %v / 输出 %v token"},
	"revoke":            {"Revoke", "吊销"},
	"confirm_revoke":    {"Revoke %v? Its next request is refused; this cannot be undone.", "确定吊销 %v？其下一个请求将被拒绝，且无法撤销。"},
	"f_key_models":      {"Models", "模型"},
	"f_key_presets":     {"Presets with server keys", "可用服务端密钥的预设"},
	"f_rpm":             {"Requests per minute", "每分钟请求数"},
	"f_tpm":             {"Tokens per minute", "每分钟 token 数"},
	"f_max_parallel":    {"Requests at once", "并发请求数"},
	"f_budget":          {"Budget", "预算"},
	"f_expires":         {"Expires (UTC)", "过期时间（UTC）"},
	"help_key_name":     {"Shown in logs, statistics and usage; never secret.", "显示在日志、统计与用量中，不是秘密。"},
	"help_key_models":   {"Model names or * patterns it may use. Empty: all.", "可使用的模型名或 * 模式。留空：全部。"},
	"help_key_presets":  {"Presets whose server-side keys it may use. Empty: all.", "可使用其服务端密钥的预设。留空：全部。"},
	"help_budget":       {"AMOUNT[ CURRENCY]/day or /month (UTC), e.g. 5/day or 20 usd/month. Empty: none.", "金额[ 货币]/day 或 /month（UTC），例如 5/day 或 20 usd/month。留空：不限。"},
	"help_expires":      {"A date (2026-12-31, through its end) or a date and time (2026-12-31T18:00), in UTC. Empty: never.", "日期（2026-12-31，含当天）或日期时间（2026-12-31T18:00），UTC。留空：永不过期。"},
	"help_limits":       {"0 or empty means no limit.", "0 或留空表示不限制。"},
	"key_created_title": {"Client key created", "客户端密钥已创建"},
	"key_created_lead":  {"The secret of %v:", "%v 的密钥："},
	"key_created_once":  {"Copy it now: it is shown only this once. llmproxy keeps only its digest and cannot show it again.", "请立即复制：它只显示这一次。llmproxy 只保存其摘要，无法再次显示。"},
	"key_secret_gone":   {"That secret has already been shown once; it cannot be shown again. Revoke the key and create a new one if it was lost.", "该密钥已显示过一次，无法再次显示。如已丢失，请吊销并重新创建。"},

	"test_lead":                {"Sends a one-token completion through the proxy's own path, as the operator, and shows how it went. No key is shown.", "以管理员身份通过代理自身的路径发送一个仅生成一个 token 的请求，并显示结果。不会显示任何密钥。"},
	"test_unavailable":         {"Testing is not available on this server.", "本服务器不支持在线测试。"},
	"test_model":               {"Test a model route", "测试模型路由"},
	"test_provider":            {"Test a provider", "测试服务商"},
	"help_test_model":          {"Any name a client could ask for; the route it takes is tested.", "客户端可请求的任意模型名；将测试它实际走的路由。"},
	"help_test_provider_model": {"Empty: the model its first route sends it.", "留空：使用第一个路由发给它的模型。"},
	"test_run":                 {"Run test", "开始测试"},
	"test_result":              {"Result", "结果"},
	"test_status":              {"Status", "状态"},
	"test_ttft":                {"Time to first token", "首 token 时间"},
	"test_total":               {"Total time", "总时间"},
	"test_error_provider":      {"Provider's error", "服务商错误"},
	"test_error_llmproxy":      {"llmproxy's error", "llmproxy 错误"},
	"test_key_changes":         {"Changed by this test", "本次测试引起的变化"},
	"test_key_change":          {"key %v of %v: %v", "%[2]v 的密钥 %[1]v：%[3]v"},
	"test_breaker_change":      {"provider %v: circuit breaker %v", "服务商 %v：熔断器%v"},
	"test_target_model":        {"model %v", "模型 %v"},
	"test_target_provider":     {"provider %v, model %v", "服务商 %v，模型 %v"},

	"usage_lead":    {"Requests, tokens and cost per UTC day, as the gateway counted them. Cost needs the model's pricing.", "按 UTC 日统计的请求、token 与费用，由网关计量。费用需要模型设置价格。"},
	"period":        {"Period", "时间范围"},
	"last_n_days":   {"last %v days", "最近 %v 天"},
	"input_tokens":  {"Input tokens", "输入 token"},
	"output_tokens": {"Output tokens", "输出 token"},
	"tokens":        {"Tokens", "Token"},
	"cost":          {"Cost", "费用"},
	"per_day":       {"Per day", "每日"},
	"metric":        {"Metric", "指标"},
	"group_by":      {"Group by", "分组"},
	"by_key":        {"By client key", "按客户端密钥"},
	"by_model":      {"By model", "按模型"},
	"by_provider":   {"By provider", "按服务商"},
	"no_usage":      {"No usage in this period.", "此期间没有用量。"},
	"chart_empty":   {"No usage in this period.", "此期间没有用量。"},
	"other":         {"other", "其他"},

	"audit_lead":  {"Every change made in the panel: who (the panel's user and their address), when, and what. No secret is ever written here.", "面板中的每一次更改：谁（面板用户及其地址）、何时、做了什么。这里从不记录任何密钥。"},
	"audit_empty": {"No change yet.", "还没有更改。"},
	"when":        {"When (UTC)", "时间（UTC）"},
	"who":         {"Who", "操作者"},
	"what":        {"What", "操作"},
	"target":      {"Entry", "条目"},
	"detail":      {"Detail", "详情"},

	"copied":        {"Copied", "已复制"},
	"copy_failed":   {"Copy failed: select the text instead", "复制失败，请手动选择文本"},
	"live_updated":  {"live · %v", "实时 · %v"},
	"live_failed":   {"live health unavailable", "无法获取实时状态"},
	"session_ended": {"Your session has ended: reload to log in again.", "会话已结束：请刷新页面重新登录。"},

	"flash_provider_saved":          {"Provider %v saved and applied.", "服务商 %v 已保存并生效。"},
	"flash_provider_deleted":        {"Provider %v deleted.", "服务商 %v 已删除。"},
	"flash_key_enabled":             {"Key %v of %v is in use again.", "%[2]v 的密钥 %[1]v 已重新启用。"},
	"flash_model_saved":             {"Model route %v saved and applied.", "模型路由 %v 已保存并生效。"},
	"flash_model_deleted":           {"Model route %v deleted.", "模型路由 %v 已删除。"},
	"flash_key_saved":               {"Client key %v saved and applied.", "客户端密钥 %v 已保存并生效。"},
	"flash_key_revoked":             {"Client key %v revoked: its next request is refused.", "客户端密钥 %v 已吊销：其下一个请求将被拒绝。"},
	"flash_key_revoked_not_applied": {"Client key %v revoked: its next request is refused. The rest of the configuration could not be rebuilt: %v", "客户端密钥 %v 已吊销：其下一个请求将被拒绝。其余配置无法重建：%v"},

	"err_required":                 {"Required.", "必填。"},
	"err_choice":                   {"Pick one of the choices.", "请从选项中选择。"},
	"err_whole_number":             {"A whole number, 0 or more.", "请输入不小于 0 的整数。"},
	"err_provider_name":            {"Letters, digits, '.', '_' and '-' only, starting with a letter or digit, at most 64.", "只能包含字母、数字、'.'、'_' 和 '-'，以字母或数字开头，最多 64 个字符。"},
	"err_name_elsewhere":           {"This name is already used by an entry from the %v.", "该名称已被来自%v的条目使用。"},
	"err_name_taken":               {"This name is already taken.", "该名称已被使用。"},
	"err_url_or_preset":            {"Give a base URL or a preset (one of them, not both).", "请填写基础地址或预设（二选一）。"},
	"err_key_value":                {"A key needs a value: env:NAME or the key.", "密钥不能为空：填写 env:NAME 或密钥本身。"},
	"err_env_name":                 {"env: must be followed by a variable name (letters, digits, _).", "env: 后须跟环境变量名（字母、数字、_）。"},
	"err_key_whitespace":           {"A key holds no spaces or line breaks.", "密钥不能包含空格或换行。"},
	"err_literal_needs_secret_key": {"This server cannot store a key itself: it has no LLMPROXY_SECRET_KEY to encrypt it with. Use env:NAME, or set LLMPROXY_SECRET_KEY (openssl rand -hex 32) and restart.", "本服务器无法直接保存密钥：未设置用于加密的 LLMPROXY_SECRET_KEY。请使用 env:NAME，或设置 LLMPROXY_SECRET_KEY（openssl rand -hex 32）后重启。"},
	"err_reenter_secret":           {"Type the key again: a key is never sent back to the browser.", "请重新输入密钥：密钥从不回传给浏览器。"},
	"err_headers":                  {"Write one \"Name: value\" per line (%v).", "每行写一个 \"名称: 值\"（%v）。"},
	"err_target_provider":          {"Each target needs a provider.", "每个目标都需要选择服务商。"},
	"err_targets":                  {"A model route needs at least one target.", "模型路由至少需要一个目标。"},
	"err_price":                    {"Prices are numbers, 0 or more.", "价格必须是不小于 0 的数字。"},
	"err_currency":                 {"A currency is a short code in letters, e.g. usd or cny.", "货币为字母代码，例如 usd 或 cny。"},
	"err_metadata":                 {"Write a JSON object, e.g. {\"family\": \"gpt-4o\"}.", "请填写 JSON 对象，例如 {\"family\": \"gpt-4o\"}。"},
	"err_key_name":                 {"At most 64 characters, no control characters.", "最多 64 个字符，不能包含控制字符。"},
	"err_budget":                   {"Write AMOUNT/day or AMOUNT/month, e.g. 5/day or 20 usd/month; the amount must be positive.", "请写成 金额/day 或 金额/month，例如 5/day 或 20 usd/month；金额须为正数。"},
	"err_expires":                  {"Write a date (2026-12-31) or a date and time (2026-12-31T18:00), in UTC.", "请填写日期（2026-12-31）或日期时间（2026-12-31T18:00），UTC。"},
	"err_expires_past":             {"This moment has passed.", "该时间已过去。"},
	"err_test_model":               {"Name a model to ask this provider for.", "请填写要向该服务商请求的模型。"},
	"err_not_editable":             {"That entry is not in the panel's store (it may have been deleted, or it comes from the config file).", "该条目不在面板的存储中（可能已被删除，或来自配置文件）。"},
	"err_key_gone":                 {"That key is no longer in the running configuration: reload the page.", "该密钥已不在运行中的配置里：请刷新页面。"},
	"err_refused":                  {"Not saved: %v", "未保存：%v"},
	"err_not_applied":              {"Saved, but the running configuration could not be rebuilt: %v", "已保存，但无法重建运行中的配置：%v"},
	"err_store":                    {"The store could not be read: %v", "无法读取存储：%v"},
}

// jsMessages are the messages the script needs.
var jsMessages = []string{
	"theme_dark", "theme_light", "copied", "copy_failed", "live_updated", "live_failed", "session_ended",
	"state_ok", "state_cooling", "state_disabled", "breaker_closed", "breaker_open", "breaker_half_open",
	"until", "chart_empty", "other", "requests", "tokens", "cost", "confirm_delete",
}

// message returns a message in lang (en or zh), formatted with args. A
// missing key is shown as itself, so a gap is visible, not fatal.
func message(lang, key string, args ...any) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	s := m[0]
	if lang == "zh" && m[1] != "" {
		s = m[1]
	}
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}

// StateLabel names a key's health state.
func (v *view) StateLabel(state string) string { return v.T("state_" + state) }

// BreakerLabel names a breaker's state.
func (v *view) BreakerLabel(state string) string { return v.T("breaker_" + state) }

// fieldMsg is a message next to a field (template "err").
type fieldMsg struct{ Field, Msg string }

// Of returns the message for a field, if any.
func (e errs) Of(field string) fieldMsg { return fieldMsg{Field: field, Msg: e[field]} }

// Attr marks a refused field for assistive technology and points it at
// its message. Field names are the panel's own constants, never input.
func (e errs) Attr(field string) template.HTMLAttr {
	if e[field] == "" {
		return ""
	}
	return template.HTMLAttr(`aria-invalid="true" aria-describedby="err-` + template.HTMLEscapeString(field) + `"`)
}

// Any reports whether any of the fields has a message.
func (e errs) Any(fields ...string) bool {
	for _, f := range fields {
		if e[f] != "" {
			return true
		}
	}
	return false
}
