// Each page links to the same page in the other language. The English book
// is built into book/ and the Chinese one into book/zh-CN/ (see .ci/run), and
// every chapter is a page at the top of its book, so the same page is
// zh-CN/NAME from an English page and ../NAME from a Chinese one.
//
// `mdbook serve docs` serves one book only: over HTTP the link appears only
// once the other page answers, so that it never leads to a missing page.
// From files (file://), where a script cannot ask, it always appears.
(() => {
    const chinese = document.documentElement.lang === 'zh-CN';
    const page = window.location.pathname.split('/').pop() || 'index.html';
    const target = (chinese ? '../' : 'zh-CN/') + page;
    const buttons = document.querySelector('.right-buttons');
    if (!buttons) {
        return;
    }
    const show = () => {
        const link = document.createElement('a');
        link.className = 'language-switch';
        link.href = target + window.location.hash;
        link.textContent = chinese ? 'English' : '中文';
        link.lang = chinese ? 'en' : 'zh-CN';
        link.title = chinese ? 'Read this page in English' : '阅读本页的中文版';
        buttons.prepend(link);
    };
    if (window.location.protocol.startsWith('http')) {
        fetch(target, { method: 'HEAD' })
            .then((answer) => { if (answer.ok) show(); })
            .catch(() => {});
    } else {
        show();
    }
})();
