package letters

// The letters of held posts: to the author, and to the moderators.

// HeldPostPending tells an author their post awaits a moderator, why,
// and until when (Expire may be empty).
var HeldPostPending = Kind{
	Name: "held_post_pending",
	Keys: []string{"List", "Subject", "Reason", "Expire"},
	Text: map[Lang]Text{
		EN: {"Your post to {{.List}} awaits approval",
			"Your post \"{{.Subject}}\" to {{.List}} awaits a moderator's approval: {{.Reason}}.\n" +
				"{{if .Expire}}\nIt is deleted if no moderator approves it by {{.Expire}}.\n{{end}}"},
		FR: {"Votre message à {{.List}} attend une approbation",
			"Votre message « {{.Subject}} » à {{.List}} attend l'approbation d'un modérateur : {{.Reason}}.\n" +
				"{{if .Expire}}\nIl sera supprimé si aucun modérateur ne l'approuve d'ici le {{.Expire}}.\n{{end}}"},
		DE: {"Ihr Beitrag an {{.List}} wartet auf Freigabe",
			"Ihr Beitrag „{{.Subject}}“ an {{.List}} wartet auf die Freigabe durch einen Moderator: {{.Reason}}.\n" +
				"{{if .Expire}}\nEr wird gelöscht, wenn ihn bis {{.Expire}} kein Moderator freigibt.\n{{end}}"},
		IT: {"Il tuo messaggio a {{.List}} attende approvazione",
			"Il tuo messaggio «{{.Subject}}» a {{.List}} attende l'approvazione di un moderatore: {{.Reason}}.\n" +
				"{{if .Expire}}\nVerrà eliminato se nessun moderatore lo approva entro il {{.Expire}}.\n{{end}}"},
		ES: {"Tu mensaje a {{.List}} espera aprobación",
			"Tu mensaje «{{.Subject}}» a {{.List}} espera la aprobación de un moderador: {{.Reason}}.\n" +
				"{{if .Expire}}\nSe eliminará si ningún moderador lo aprueba antes del {{.Expire}}.\n{{end}}"},
	},
}

// HeldPostRejected tells an author a moderator rejected their post, and
// why.
var HeldPostRejected = Kind{
	Name: "held_post_rejected",
	Keys: []string{"List", "Subject", "Reason"},
	Text: map[Lang]Text{
		EN: {"Your post to {{.List}} was rejected",
			"A moderator of {{.List}} rejected your post \"{{.Subject}}\".\n\nTheir reason:\n\n{{.Reason}}\n"},
		FR: {"Votre message à {{.List}} a été refusé",
			"Un modérateur de {{.List}} a refusé votre message « {{.Subject}} ».\n\nSa raison :\n\n{{.Reason}}\n"},
		DE: {"Ihr Beitrag an {{.List}} wurde abgelehnt",
			"Ein Moderator von {{.List}} hat Ihren Beitrag „{{.Subject}}“ abgelehnt.\n\nBegründung:\n\n{{.Reason}}\n"},
		IT: {"Il tuo messaggio a {{.List}} è stato rifiutato",
			"Un moderatore di {{.List}} ha rifiutato il tuo messaggio «{{.Subject}}».\n\nLa sua motivazione:\n\n{{.Reason}}\n"},
		ES: {"Tu mensaje a {{.List}} fue rechazado",
			"Un moderador de {{.List}} rechazó tu mensaje «{{.Subject}}».\n\nSu motivo:\n\n{{.Reason}}\n"},
	},
}

// ModeratePost asks the moderators to decide on a held post, with the
// mailto: links of their answers (commands.DecisionLinks).
var ModeratePost = Kind{
	Name: "moderate_post",
	Keys: []string{"List", "Sender", "Subject", "Reason", "Accept", "Reject", "Discard", "Token", "Expire"},
	Text: map[Lang]Text{
		EN: {"{{.List}}: a post by {{.Sender}} awaits your decision",
			"A post to {{.List}} is held: {{.Reason}}.\n\n  From:    {{.Sender}}\n  Subject: {{.Subject}}\n\n" +
				"To send it to the list, write (or click):\n  {{.Accept}}\n" +
				"To reject it, telling the author why in the body of your mail:\n  {{.Reject}}\n" +
				"To discard it without a word (spam):\n  {{.Discard}}\n\n" +
				"Or reply to {{.List}}'s -request address with \"accept {{.Token}}\", \"reject {{.Token}} reason\" or \"discard {{.Token}}\".\n" +
				"The post is deleted if nobody decides by {{.Expire}}.\n"},
		FR: {"{{.List}} : un message de {{.Sender}} attend votre décision",
			"Un message à {{.List}} est retenu : {{.Reason}}.\n\n  De :    {{.Sender}}\n  Objet : {{.Subject}}\n\n" +
				"Pour l'envoyer à la liste, écrivez (ou cliquez) :\n  {{.Accept}}\n" +
				"Pour le refuser en donnant la raison à l'auteur dans le corps de votre message :\n  {{.Reject}}\n" +
				"Pour le supprimer sans rien dire (spam) :\n  {{.Discard}}\n\n" +
				"Ou répondez à l'adresse -request de {{.List}} avec « accept {{.Token}} », « reject {{.Token}} raison » ou « discard {{.Token}} ».\n" +
				"Le message sera supprimé si personne ne décide d'ici le {{.Expire}}.\n"},
		DE: {"{{.List}}: ein Beitrag von {{.Sender}} wartet auf Ihre Entscheidung",
			"Ein Beitrag an {{.List}} wurde zurückgehalten: {{.Reason}}.\n\n  Von:     {{.Sender}}\n  Betreff: {{.Subject}}\n\n" +
				"Um ihn an die Liste zu senden, schreiben Sie (oder klicken Sie):\n  {{.Accept}}\n" +
				"Um ihn abzulehnen und dem Absender im Text Ihrer Mail den Grund zu nennen:\n  {{.Reject}}\n" +
				"Um ihn kommentarlos zu verwerfen (Spam):\n  {{.Discard}}\n\n" +
				"Oder antworten Sie an die -request-Adresse von {{.List}} mit „accept {{.Token}}“, „reject {{.Token}} Grund“ oder „discard {{.Token}}“.\n" +
				"Der Beitrag wird gelöscht, wenn bis {{.Expire}} niemand entscheidet.\n"},
		IT: {"{{.List}}: un messaggio di {{.Sender}} attende la tua decisione",
			"Un messaggio a {{.List}} è trattenuto: {{.Reason}}.\n\n  Da:      {{.Sender}}\n  Oggetto: {{.Subject}}\n\n" +
				"Per inviarlo alla lista, scrivi (o fai clic):\n  {{.Accept}}\n" +
				"Per rifiutarlo, spiegando il motivo all'autore nel testo della tua mail:\n  {{.Reject}}\n" +
				"Per scartarlo senza avvisare nessuno (spam):\n  {{.Discard}}\n\n" +
				"Oppure rispondi all'indirizzo -request di {{.List}} con «accept {{.Token}}», «reject {{.Token}} motivo» o «discard {{.Token}}».\n" +
				"Il messaggio verrà eliminato se nessuno decide entro il {{.Expire}}.\n"},
		ES: {"{{.List}}: un mensaje de {{.Sender}} espera tu decisión",
			"Un mensaje a {{.List}} está retenido: {{.Reason}}.\n\n  De:     {{.Sender}}\n  Asunto: {{.Subject}}\n\n" +
				"Para enviarlo a la lista, escribe (o haz clic):\n  {{.Accept}}\n" +
				"Para rechazarlo, explicando el motivo al autor en el cuerpo de tu correo:\n  {{.Reject}}\n" +
				"Para descartarlo sin avisar a nadie (spam):\n  {{.Discard}}\n\n" +
				"O responde a la dirección -request de {{.List}} con «accept {{.Token}}», «reject {{.Token}} motivo» o «discard {{.Token}}».\n" +
				"El mensaje se eliminará si nadie decide antes del {{.Expire}}.\n"},
	},
}
