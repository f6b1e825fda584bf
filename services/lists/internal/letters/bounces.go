package letters

// The letters of bounces: the warnings to a member whose delivery is
// disabled, and the moderators' notice of a member removed.

// BounceWarning tells a member that their bounces disabled delivery:
// warning Warning of Warnings, the last error (Diagnostic, may be
// empty), how to enable it again (a reply, or a mail to Confirm, the
// -confirm+TOKEN address, until Expire), who answers questions (Owner,
// the list's -owner address), and that they are removed on Remove
// unless delivery is enabled again.
var BounceWarning = Kind{
	Name: "bounce_warning",
	Keys: []string{"List", "Owner", "Confirm", "Expire", "Warning", "Warnings", "Diagnostic", "Remove"},
	Text: map[Lang]Text{
		EN: {"Your delivery from {{.List}} is disabled (warning {{.Warning}} of {{.Warnings}})",
			"Mail from {{.List}} to you bounced too often, so you no longer receive its posts.\n" +
				"{{if .Diagnostic}}\nThe last error reported: {{.Diagnostic}}\n{{end}}" +
				"\nIf your mailbox works again, reply to this mail, or write to\n  {{.Confirm}}\nby {{.Expire}}: you will receive the posts again. " +
				"Questions reach the list's moderators at {{.Owner}}.\n\nOtherwise you are removed from the list on {{.Remove}}.\n"},
		FR: {"Votre réception de {{.List}} est suspendue (avertissement {{.Warning}} sur {{.Warnings}})",
			"Les messages de {{.List}} vous sont revenus en erreur trop souvent : vous ne recevez plus ses messages.\n" +
				"{{if .Diagnostic}}\nLa dernière erreur signalée : {{.Diagnostic}}\n{{end}}" +
				"\nSi votre boîte fonctionne de nouveau, répondez à ce message, ou écrivez à\n  {{.Confirm}}\navant le {{.Expire}} : vous recevrez de nouveau les messages. " +
				"Vos questions parviennent aux modérateurs de la liste à {{.Owner}}.\n\nSinon, vous serez retiré de la liste le {{.Remove}}.\n"},
		DE: {"Ihre Zustellung von {{.List}} ist ausgesetzt (Warnung {{.Warning}} von {{.Warnings}})",
			"Mails von {{.List}} an Sie kamen zu oft als unzustellbar zurück, daher erhalten Sie keine Beiträge mehr.\n" +
				"{{if .Diagnostic}}\nDer zuletzt gemeldete Fehler: {{.Diagnostic}}\n{{end}}" +
				"\nWenn Ihr Postfach wieder funktioniert, antworten Sie auf diese Mail oder schreiben Sie an\n  {{.Confirm}}\nbis {{.Expire}}: Sie erhalten die Beiträge dann wieder. " +
				"Fragen erreichen die Moderatoren der Liste unter {{.Owner}}.\n\nAndernfalls werden Sie am {{.Remove}} von der Liste entfernt.\n"},
		IT: {"La tua ricezione da {{.List}} è sospesa (avviso {{.Warning}} di {{.Warnings}})",
			"Le mail di {{.List}} a te sono tornate indietro troppo spesso, quindi non ricevi più i suoi messaggi.\n" +
				"{{if .Diagnostic}}\nL'ultimo errore segnalato: {{.Diagnostic}}\n{{end}}" +
				"\nSe la tua casella funziona di nuovo, rispondi a questa mail o scrivi a\n  {{.Confirm}}\nentro il {{.Expire}}: riceverai di nuovo i messaggi. " +
				"Le domande arrivano ai moderatori della lista a {{.Owner}}.\n\nAltrimenti verrai rimosso dalla lista il {{.Remove}}.\n"},
		ES: {"Tu recepción de {{.List}} está suspendida (aviso {{.Warning}} de {{.Warnings}})",
			"Los correos de {{.List}} a ti rebotaron demasiadas veces, así que ya no recibes sus mensajes.\n" +
				"{{if .Diagnostic}}\nEl último error indicado: {{.Diagnostic}}\n{{end}}" +
				"\nSi tu buzón vuelve a funcionar, responde a este correo o escribe a\n  {{.Confirm}}\nantes del {{.Expire}}: volverás a recibir los mensajes. " +
				"Las preguntas llegan a los moderadores de la lista en {{.Owner}}.\n\nSi no, se te dará de baja de la lista el {{.Remove}}.\n"},
	},
}

// BounceEnabled tells a member their delivery is enabled again, as
// they confirmed.
var BounceEnabled = Kind{
	Name: "bounce_enabled",
	Keys: []string{"List"},
	Text: map[Lang]Text{
		EN: {"You receive {{.List}} again", "Your delivery from {{.List}} is enabled again: you receive its posts.\n"},
		FR: {"Vous recevez de nouveau {{.List}}", "Votre réception de {{.List}} est rétablie : vous recevez de nouveau ses messages.\n"},
		DE: {"Sie erhalten {{.List}} wieder", "Ihre Zustellung von {{.List}} ist wieder eingeschaltet: Sie erhalten ihre Beiträge.\n"},
		IT: {"Ricevi di nuovo {{.List}}", "La tua ricezione da {{.List}} è riattivata: ricevi di nuovo i suoi messaggi.\n"},
		ES: {"Vuelves a recibir {{.List}}", "Tu recepción de {{.List}} está reactivada: vuelves a recibir sus mensajes.\n"},
	},
}

// BounceRemoved tells a moderator that Email was removed from the list
// after bouncing on Score days and the warnings went unanswered, with
// the last error (Diagnostic, may be empty).
var BounceRemoved = Kind{
	Name: "bounce_removed",
	Keys: []string{"List", "Email", "Score", "Diagnostic"},
	Text: map[Lang]Text{
		EN: {"{{.List}}: {{.Email}} was removed after bounces",
			"Mail to {{.Email}} bounced on {{.Score}} days; delivery was disabled and the warnings went unanswered, so the address was removed from {{.List}}.\n" +
				"{{if .Diagnostic}}\nThe last error reported: {{.Diagnostic}}\n{{end}}"},
		FR: {"{{.List}} : {{.Email}} a été retiré après des erreurs de distribution",
			"Les messages à {{.Email}} sont revenus en erreur {{.Score}} jours ; la réception a été suspendue et les avertissements sont restés sans réponse, l'adresse a donc été retirée de {{.List}}.\n" +
				"{{if .Diagnostic}}\nLa dernière erreur signalée : {{.Diagnostic}}\n{{end}}"},
		DE: {"{{.List}}: {{.Email}} wurde nach Unzustellbarkeit entfernt",
			"Mails an {{.Email}} kamen an {{.Score}} Tagen als unzustellbar zurück; die Zustellung wurde ausgesetzt und die Warnungen blieben unbeantwortet, daher wurde die Adresse von {{.List}} entfernt.\n" +
				"{{if .Diagnostic}}\nDer zuletzt gemeldete Fehler: {{.Diagnostic}}\n{{end}}"},
		IT: {"{{.List}}: {{.Email}} è stato rimosso dopo mail non recapitate",
			"Le mail a {{.Email}} sono tornate indietro in {{.Score}} giorni; la ricezione è stata sospesa e gli avvisi sono rimasti senza risposta, quindi l'indirizzo è stato rimosso da {{.List}}.\n" +
				"{{if .Diagnostic}}\nL'ultimo errore segnalato: {{.Diagnostic}}\n{{end}}"},
		ES: {"{{.List}}: {{.Email}} fue dado de baja tras rebotes",
			"Los correos a {{.Email}} rebotaron en {{.Score}} días; la recepción se suspendió y los avisos quedaron sin respuesta, así que la dirección se dio de baja de {{.List}}.\n" +
				"{{if .Diagnostic}}\nEl último error indicado: {{.Diagnostic}}\n{{end}}"},
	},
}
