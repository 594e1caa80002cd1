package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// password finds the password for user: the EST_PASSWORD environment
// variable, else -password-file, else a prompt on the terminal. It is never
// taken from the command line.
func password(e *env, user, file string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		line, _, _ := strings.Cut(string(data), "\n")
		pw := strings.TrimRight(line, "\r")
		if pw == "" {
			return "", fmt.Errorf("%s: empty password", file)
		}
		return pw, nil
	}
	if pw, ok := e.getenv("EST_PASSWORD"); ok && pw != "" {
		return pw, nil
	}
	if e.prompt != nil {
		return e.prompt(fmt.Sprintf("Password for %s: ", user))
	}
	return "", errors.New("no password: set EST_PASSWORD, give -password-file, or run on a terminal")
}

// terminalPrompt reads a password from the controlling terminal without echo.
func terminalPrompt(stderr io.Writer) func(string) (string, error) {
	return func(msg string) (string, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return "", errors.New("no password: set EST_PASSWORD, give -password-file, or run on a terminal")
		}
		defer tty.Close()
		fmt.Fprint(tty, msg)
		if term.IsTerminal(int(tty.Fd())) {
			b, err := term.ReadPassword(int(tty.Fd()))
			fmt.Fprintln(tty)
			return string(b), err
		}
		line, err := bufio.NewReader(tty).ReadString('\n')
		return strings.TrimRight(line, "\r\n"), err
	}
}
